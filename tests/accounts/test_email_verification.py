"""Email verification: mailed on register and on email change, single use, optional for login."""

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from app import create_app
from app.accounts.models import AccountToken, User
from app.core.database import utcnow
from app.core.extensions import db
from tests.support.app import PASSWORD, Account, assert_problem, mailed_token, make_user, register, settings

LOGIN = "/api/v1/auth/login"
VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/verify-email/resend"
ME = "/api/v1/users/me"


def verify(client: FlaskClient, token: str) -> Any:
    return client.post(VERIFY, json={"token": token})


def verified_at(client: FlaskClient, account: Account) -> str | None:
    value: str | None = client.get(ME, headers=account.headers).get_json()["email_verified_at"]
    return value


def test_register_mails_a_token_that_verifies_the_address(client: FlaskClient, outbox: list[EmailMessage]) -> None:
    body = register(client).get_json()
    assert body["email_verified_at"] is None
    [mail] = outbox
    assert (mail["To"], mail["Subject"]) == ("ada@example.com", "Confirm your email address")

    response = verify(client, mailed_token(mail))
    assert response.status_code == 204
    account = Account(client, body["id"], "ada@example.com", PASSWORD)
    account.login()
    assert verified_at(client, account) is not None


def test_a_verification_token_works_once(client: FlaskClient, outbox: list[EmailMessage]) -> None:
    register(client)
    token = mailed_token(outbox[-1])
    assert verify(client, token).status_code == 204
    assert_problem(verify(client, token), 400, "token_used")


def test_an_expired_verification_token_is_refused(client: FlaskClient, app: Flask, outbox: list[EmailMessage]) -> None:
    register(client)
    with app.app_context():
        db.session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert_problem(verify(client, mailed_token(outbox[-1])), 400, "token_expired")


def test_an_unknown_token_is_refused(client: FlaskClient) -> None:
    assert_problem(verify(client, "made-up"), 400, "token_invalid")
    assert_problem(client.post(VERIFY, json={"token": ""}), 422, "validation_failed")


def test_a_new_address_is_verified_by_confirming_it(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    assert client.post(RESEND, headers=user.headers).status_code == 202
    assert verify(client, mailed_token(outbox[-1])).status_code == 204
    assert verified_at(client, user) is not None
    assert_problem(client.post(RESEND, headers=user.headers), 409, "email_already_verified")

    change = {"email": "new@example.com", "current_password": PASSWORD}
    response = client.patch(ME, headers=user.headers, json=change)
    assert response.status_code == 200 and response.get_json()["email_verified_at"] is not None  # still the old one
    [confirmation] = [mail for mail in outbox if mail["To"] == "new@example.com"]
    assert verify(client, mailed_token(confirmation)).status_code == 204
    me = client.get(ME, headers=user.headers).get_json()
    assert me["email"] == "new@example.com" and me["email_verified_at"] is not None


def test_a_token_for_a_former_address_no_longer_verifies(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    assert client.post(RESEND, headers=user.headers).status_code == 202
    old_token = mailed_token(outbox[-1])
    change = {"email": "new@example.com", "current_password": PASSWORD}
    assert client.patch(ME, headers=user.headers, json=change).status_code == 200
    assert verify(client, mailed_token(outbox[-2])).status_code == 204  # the confirmation, before the notice
    assert_problem(verify(client, old_token), 400, "token_invalid")


def test_an_unchanged_email_sends_no_mail(client: FlaskClient, user: Account, outbox: list[EmailMessage]) -> None:
    assert client.patch(ME, headers=user.headers, json={"email": user.email.upper()}).status_code == 200
    assert client.patch(ME, headers=user.headers, json={"display_name": "Grace"}).status_code == 200
    assert outbox == []


def test_a_conflicting_email_change_sends_no_mail(
    client: FlaskClient, app: Flask, user: Account, outbox: list[EmailMessage]
) -> None:
    other = make_user(app)
    assert_problem(
        client.patch(ME, headers=user.headers, json={"email": other.email, "current_password": PASSWORD}), 409
    )
    assert outbox == []


def test_resend_mails_a_fresh_token(client: FlaskClient, user: Account, outbox: list[EmailMessage]) -> None:
    response = client.post(RESEND, headers=user.headers)
    assert response.status_code == 202 and user.email in response.get_json()["detail"]
    assert [m["To"] for m in outbox] == [user.email]
    assert verify(client, mailed_token(outbox[-1])).status_code == 204


def test_resend_needs_a_login(client: FlaskClient) -> None:
    assert_problem(client.post(RESEND), 401, "missing_token")


def test_resend_is_rate_limited_per_user(limited: Callable[..., Flask], app: Flask) -> None:
    client = limited().test_client()
    accounts = [Account(client, str(u.id), u.email, PASSWORD) for u in (make_user(app), make_user(app))]
    for account in accounts:
        account.login()
    for _ in range(3):
        assert client.post(RESEND, headers=accounts[0].headers).status_code == 202
    assert_problem(client.post(RESEND, headers=accounts[0].headers), 429, "too_many_requests")
    assert client.post(RESEND, headers=accounts[1].headers).status_code == 202  # the same IP, another user


def require_verified(database_app: Flask) -> FlaskClient:
    url = database_app.config["DATABASE_URL"]
    return create_app(settings(DATABASE_URL=url, REQUIRE_VERIFIED_EMAIL=True)).test_client()


def test_login_ignores_verification_by_default(client: FlaskClient, app: Flask) -> None:
    user = make_user(app)
    assert client.post(LOGIN, json={"email": user.email, "password": PASSWORD}).status_code == 200


def test_when_required_an_unverified_login_is_403_until_verified(database_app: Flask, app: Flask) -> None:
    client = require_verified(database_app)
    register(client)
    credentials = {"email": "ada@example.com", "password": PASSWORD}
    body = assert_problem(client.post(LOGIN, json=credentials), 403, "email_not_verified")
    assert "reset your password" in body["detail"]
    assert_problem(client.post(LOGIN, json={**credentials, "password": "wrong " * 4}), 401, "invalid_credentials")

    token = mailed_token(client.application.extensions["mail_outbox"][-1])
    assert verify(client, token).status_code == 204
    assert client.post(LOGIN, json=credentials).status_code == 200


def test_when_required_a_password_reset_is_the_way_back_in(database_app: Flask, app: Flask) -> None:
    client = require_verified(database_app)
    user = make_user(app)
    assert client.post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    token = mailed_token(client.application.extensions["mail_outbox"][-1])
    new_password = "a brand new and rather long passphrase"
    body = {"token": token, "new_password": new_password}
    assert client.post("/api/v1/auth/password-reset/confirm", json=body).status_code == 204
    assert client.post(LOGIN, json={"email": user.email, "password": new_password}).status_code == 200


def test_an_admin_made_on_the_command_line_is_verified(app: Flask, outbox: list[EmailMessage]) -> None:
    args = ["users", "create-admin", "--email", "root@example.com", "--generate-password"]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    with app.app_context():
        admin = db.session.scalars(db.select(User).where(User.email == "root@example.com")).one()
        assert admin.email_verified_at is not None
    assert outbox == []
