"""Helpers for tests of the app in-process: test settings, accounts, tokens and the problem+json check."""

import fcntl
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jwt
from flask import Flask
from flask.testing import FlaskClient

from app.accounts.models import User
from app.core.config import SETTINGS
from app.core.extensions import db
from tests.support.stack_flow import PASSWORD  # the one test password; stack_flow stays stdlib-only

ROOT = Path(__file__).resolve().parents[2]  # the project: where nginx.conf, migrations/ and docs/ are
SECRET = "test-only-secret-" + "0123456789abcdef" * 4  # 81 bytes: PyJWT warns below 64 for HS512
JWT_SECRET = "test-only-jwt-secret-" + "fedcba9876543210" * 4  # production refuses one value for both keys
DATABASES = os.environ.get("TEST_DATABASES", "sqlite,postgres").split(",")


UNLIMITED: dict[str, Any] = {
    **{name: "1000000 per second" for name in SETTINGS if name.startswith("RATELIMIT_") and "URI" not in name},
    "HASH_CONCURRENCY": 64,  # tests that race registrations must not meet the bound on hashing
}
REAL_LIMITS = {name: SETTINGS[name].default for name in SETTINGS if name.startswith("RATELIMIT_")}


def settings(**overrides: Any) -> dict[str, Any]:
    """Config for a test app: real secrets (PyJWT warns on short keys), testing mode, rate limits and
    the bound on hashing out of the way (tests/core/test_ratelimit.py and tests/system/test_hashslots.py
    check the real ones), mail kept in memory."""
    base = {"TESTING": True, "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET, "MAIL_BACKEND": "memory"}
    return {**base, **UNLIMITED, **overrides}


def production(**overrides: Any) -> dict[str, Any]:
    """Settings the production guard accepts (each test of a refusal changes one of them)."""
    base = {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "JWT_SECRET_KEY": JWT_SECRET,
        "FLASK_DEBUG": False,
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
        "MAIL_BACKEND": "smtp",
        "PUBLIC_URL": "https://api.example.com",
    }
    return {**base, **overrides}


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


def claims(token: str) -> dict[str, Any]:
    """What a token says, read without checking its signature."""
    return jwt.decode(token, options={"verify_signature": False})


def sid(token: str | dict[str, Any]) -> str:
    """The session id an access token (or a token pair's) carries, as the API lists it."""
    access = token if isinstance(token, str) else token["access_token"]
    return str(claims(access)["sid"])


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


def register(client: FlaskClient, **overrides: Any) -> Any:
    """POST /auth/register for Ada (PASSWORD), or whatever the overrides say."""
    body = {"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada", **overrides}
    return client.post("/api/v1/auth/register", json=body)


def login(client: FlaskClient, email: str, password: str) -> Any:
    """POST /auth/login; the response, whatever it is."""
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


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


def timed(call: Callable[[], object]) -> float:
    """How many seconds call() took."""
    started = time.monotonic()
    call()
    return time.monotonic() - started


@contextmanager
def held(folder: Path, slots: int = 1) -> Iterator[None]:
    """Take every hashing slot in the folder from outside the app, as other workers busy hashing would."""
    folder.mkdir(parents=True, exist_ok=True)
    fds = [os.open(folder / f"slot-{n}", os.O_RDWR | os.O_CREAT, 0o600) for n in range(slots)]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        for fd in fds:
            os.close(fd)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation of an OpenAPI or Swagger document."""
    return [
        (path, method, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method != "parameters"
    ]
