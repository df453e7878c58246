"""Fixtures: the suite runs once per database (SQLite and a real Postgres), isolated per test.
The helpers the tests share are in tests/support/."""

import os
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.core import mail
from app.core.cli import init_migrations
from app.core.extensions import db
from tests.support.app import DATABASES, PASSWORD, REAL_LIMITS, Account, make_user, settings
from tests.support.postgres import Cluster, find_bindir, free_port
from tests.support.smtp import Inbox


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


@pytest.fixture
def limited(database_app: Flask) -> Callable[..., Flask]:
    """limited(**limits) -> an app on the session database with the real default rate limits (or the
    given ones), and fresh counters."""

    def make(**limits: str) -> Flask:
        # A new app also gives the limiter fresh in-memory counters.
        return create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], **{**REAL_LIMITS, **limits}))

    return make


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Inbox, int]]]:
    """start(**aiosmtpd options) -> (inbox, port) of an SMTP server on loopback, stopped afterwards."""
    controllers: list[Controller] = []

    def start(**options: Any) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        if controller.handler.stall is not None:
            controller.handler.stall.set()
        controller.stop()
