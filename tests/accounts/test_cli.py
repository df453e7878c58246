"""`flask users create-admin` and `flask tokens purge`."""

import re
import uuid
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.models import RefreshSession, RevokedToken, User
from app.core.database import utcnow
from app.core.extensions import db
from tests.support.app import PASSWORD, Account, make_user


def test_create_admin_prompts_for_the_password(app: Flask, client: FlaskClient) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "--email", "Root@Example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    admin = Account(client, "", "root@example.com", PASSWORD)
    admin.login()
    assert client.get("/api/v1/users", headers=admin.headers).status_code == 200


def test_create_admin_can_generate_a_password(app: Flask, client: FlaskClient) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "--email", "gen@example.com", "--generate-password"]
    )
    assert result.exit_code == 0, result.output
    password = re.search(r"Password \(shown once\): (\S+)", result.output).group(1)  # type: ignore[union-attr]
    assert len(password) >= 24
    Account(client, "", "gen@example.com", password).login()


def test_create_admin_refuses_weak_passwords_and_duplicates(app: Flask) -> None:
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["users", "create-admin", "--email", "w@example.com"], input="short\nshort\n")
    assert weak.exit_code != 0 and "password" in weak.output
    make_user(app, email="taken@example.com")
    taken = runner.invoke(args=["users", "create-admin", "--email", "taken@example.com", "--generate-password"])
    assert taken.exit_code != 0
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.email == "taken@example.com")) == "user"


def test_tokens_purge_removes_only_what_has_ended(app: Flask) -> None:
    user = make_user(app)
    now = utcnow()
    with app.app_context():
        db.session.add_all(
            [
                RevokedToken(jti="expired", expires_at=now - timedelta(minutes=1)),
                RevokedToken(jti="live", expires_at=now + timedelta(minutes=10)),
                RefreshSession(id=uuid.uuid4(), user_id=user.id, current_jti="a", expires_at=now - timedelta(days=1)),
                RefreshSession(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    current_jti="b",
                    expires_at=now + timedelta(days=1),
                    revoked_at=now,
                ),
                RefreshSession(id=uuid.uuid4(), user_id=user.id, current_jti="c", expires_at=now + timedelta(days=1)),
            ]
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["tokens", "purge"])
    assert result.exit_code == 0 and "Purged 1 revoked tokens and 2 ended sessions" in result.output
    with app.app_context():
        assert list(db.session.scalars(select(RevokedToken.jti))) == ["live"]
        assert list(db.session.scalars(select(RefreshSession.current_jti))) == ["c"]
