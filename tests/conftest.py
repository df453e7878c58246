"""Fixtures: the suite runs once per database (SQLite and a real Postgres), isolated per test."""

import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.accounts.models import User
from app.core import mail
from app.core.cli import init_migrations
from app.core.config import SETTINGS
from app.core.extensions import db
from tests.postgres import Cluster, find_bindir

SECRET = "test-only-secret-" + "0123456789abcdef" * 4  # 81 bytes: PyJWT warns below 64 for HS512
PASSWORD = "correct horse battery staple"
DATABASES = os.environ.get("TEST_DATABASES", "sqlite,postgres").split(",")


UNLIMITED: dict[str, Any] = {
    **{name: "1000000 per second" for name in SETTINGS if name.startswith("RATELIMIT_") and "URI" not in name},
    "HASH_CONCURRENCY": 64,  # tests that race registrations must not meet the bound on hashing
}


def settings(**overrides: Any) -> dict[str, Any]:
    """Config for a test app: real secrets (PyJWT warns on short keys), testing mode, rate limits and
    the bound on hashing out of the way (tests/test_ratelimit.py and tests/test_hashslots.py check
    the real ones), mail kept in memory."""
    base = {"TESTING": True, "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET, "MAIL_BACKEND": "memory"}
    return {**base, **UNLIMITED, **overrides}


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster | None]:
    """A throwaway cluster, unless TEST_DATABASE_URL names a server to use instead."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries not found: install postgresql-15, set TEST_PG_BINDIR or "
            "TEST_DATABASE_URL, or run only SQLite with TEST_DATABASES=sqlite",
            pytrace=False,
        )
    cluster = Cluster(bindir)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def new_database(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Make an empty database of the given kind and return its URL."""

    def make(kind: str) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        if kind == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / name}.db"
        cluster = request.getfixturevalue("postgres")
        return cluster.create_database(name) if cluster else os.environ["TEST_DATABASE_URL"]

    return make


@pytest.fixture(scope="session", params=DATABASES)
def database_app(request: pytest.FixtureRequest, new_database: Callable[[str], str]) -> Iterator[Flask]:
    """One migrated app per database kind for the whole session."""
    app = create_app(settings(DATABASE_URL=new_database(request.param)))
    init_migrations(app)
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(database_app: Flask) -> Iterator[Flask]:
    """The session app, emptied after each test."""
    yield database_app
    with database_app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def outbox(app: Flask) -> list[EmailMessage]:
    """The mails this test's app sent (MAIL_BACKEND=memory), starting empty."""
    sent = mail.outbox(app)
    sent.clear()
    return sent


def mailed_token(message: EmailMessage) -> str:
    """The token a password-reset or verification mail carries (FRONTEND_URL unset: on its own line)."""
    found = re.search(r"^    (\S+)\r?$", message.get_content(), re.MULTILINE)
    assert found, message.get_content()
    return found.group(1)


@dataclass
class Account:
    """A user in the database plus a live login."""

    client: FlaskClient
    id: str
    email: str
    password: str
    tokens: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens["access_token"])

    def login(self) -> dict[str, Any]:
        response = self.client.post("/api/v1/auth/login", json={"email": self.email, "password": self.password})
        assert response.status_code == 200, response.get_json()
        self.tokens = response.get_json()
        return self.tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_user(app: Flask, **overrides: Any) -> User:
    """Insert a user straight into the database (password: PASSWORD unless overridden)."""
    password = overrides.pop("password", PASSWORD)
    values = {"email": f"user-{uuid.uuid4().hex[:8]}@example.com", "display_name": "Test User", **overrides}
    with app.app_context():
        user = User(**values)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
    return user


@pytest.fixture
def make_account(app: Flask, client: FlaskClient) -> Callable[..., Account]:
    """make_account(role="admin", ...) -> a user who is logged in."""

    def make(**overrides: Any) -> Account:
        password = overrides.get("password", PASSWORD)
        user = make_user(app, **overrides)
        account = Account(client, str(user.id), user.email, password)
        account.login()
        return account

    return make


@pytest.fixture
def user(make_account: Callable[..., Account]) -> Account:
    return make_account()


@pytest.fixture
def admin(make_account: Callable[..., Account]) -> Account:
    return make_account(role="admin", display_name="Admin")


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert an RFC 9457 problem response and return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "code", "request_id"} <= body.keys()
    assert body["request_id"] == response.headers["X-Request-ID"]
    if code:
        assert body["code"] == code, body
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body
