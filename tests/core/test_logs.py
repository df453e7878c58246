"""Logs as an operator reads them: what the app's real handler writes to stderr, one line per event,
with the request's context, the security events, and never a password or a token."""

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.core.config import ConfigError
from app.core.extensions import db
from tests.support.app import PASSWORD, SECRET, bearer, login, make_user, production, settings

UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FIELDS = {"time", "level", "event", "logger", "method", "path", "status", "duration_ms", "user_id", "client_ip"}


@pytest.fixture
def logged(app: Flask) -> Iterator[Flask]:
    """An app on the test database that logs JSON (as in production)."""
    json_app = create_app(settings(DATABASE_URL=app.config["DATABASE_URL"], LOG_FORMAT="json"))
    yield json_app
    with json_app.app_context():
        db.engine.dispose()


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every line written to stderr so far; each one must be a JSON object."""
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_each_request_writes_one_access_line_with_its_context(
    logged: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    user = make_user(logged)
    client = logged.test_client()
    token = login(client, user.email, PASSWORD).get_json()["access_token"]
    capsys.readouterr()

    client.get("/api/v1/users/me?page=2", headers={**bearer(token), "X-Request-ID": "trace-42"})

    (line,) = lines(capsys)
    assert FIELDS | {"request_id"} <= line.keys()
    assert UTC_TIME.fullmatch(line["time"])
    assert line["level"] == "INFO" and line["event"] == "request" and line["logger"] == "app.access"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/users/me", 200)
    assert isinstance(line["duration_ms"], float)
    assert (line["user_id"], line["client_ip"], line["request_id"]) == (str(user.id), "127.0.0.1", "trace-42")


def test_every_line_of_a_request_carries_its_request_id(logged: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    user = make_user(logged)
    client = logged.test_client()
    token = login(client, user.email, PASSWORD).get_json()["access_token"]
    capsys.readouterr()

    response = client.get("/api/v1/users", headers=bearer(token))  # admins only: 403

    assert response.status_code == 403
    written = lines(capsys)
    assert [line["event"] for line in written] == ["access.forbidden", "request"]
    assert {line["request_id"] for line in written} == {response.headers["X-Request-ID"]}
    assert written[0]["level"] == "WARNING" and written[0]["code"] == "forbidden"
    assert written[0]["user_id"] == str(user.id)


def test_security_events_are_logged(logged: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    admin = make_user(logged, role="admin")
    user = make_user(logged)
    client = logged.test_client()
    login(client, user.email, "not the password at all")
    admin_token = login(client, admin.email, PASSWORD).get_json()["access_token"]
    tokens = login(client, user.email, PASSWORD).get_json()
    rotated = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).get_json()
    client.post("/api/v1/auth/refresh", headers=bearer(rotated["refresh_token"]))
    # Two rotations old, so no grace window forgives it: reused, the session ends.
    client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    fresh = login(client, user.email, PASSWORD).get_json()
    client.post("/api/v1/auth/logout", headers=bearer(fresh["access_token"]))
    client.patch(f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=bearer(admin_token))

    events = {line["event"]: line for line in lines(capsys) if line["logger"] == "app.security"}
    assert events["login.failed"]["level"] == "WARNING"
    assert events["login.failed"]["details"] == {"email": user.email, "reason": "invalid_credentials"}
    assert events["login.succeeded"]["target_id"] == str(user.id)
    assert events["refresh_token.reused"]["level"] == "WARNING"
    assert events["logout"]["user_id"] == str(user.id) and events["logout"]["session_id"]
    changed = events["user.role_changed"]
    assert (changed["actor_id"], changed["target_id"]) == (str(admin.id), str(user.id))
    assert changed["details"] == {"from": "user", "to": "admin"}


def test_passwords_and_tokens_never_reach_the_logs(
    logged: Flask, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    canary, wrong = f"canary-password-{uuid.uuid4().hex}", f"canary-wrong-{uuid.uuid4().hex}"
    client = logged.test_client()
    email = f"canary-{uuid.uuid4().hex[:8]}@example.com"
    registered = client.post("/api/v1/auth/register", json={"email": email, "password": canary, "display_name": "C"})
    assert registered.status_code == 201
    assert login(client, email, wrong).status_code == 401
    tokens = login(client, email, canary).get_json()
    fresh = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).get_json()
    query_token = f"canary-query-{uuid.uuid4().hex}"
    assert client.get(f"/api/v1/users/me?access_token={query_token}&jwt={fresh['access_token']}").status_code == 401
    assert client.post("/api/v1/auth/logout", headers=bearer(fresh["access_token"])).status_code == 204

    written = capsys.readouterr().err + caplog.text
    assert "login.succeeded" in written and "/api/v1/users/me" in written  # the lines are there
    secrets = [canary, wrong, query_token, SECRET, *tokens.values(), *fresh.values()]
    assert not [secret for secret in secrets if isinstance(secret, str) and len(secret) > 8 and secret in written]


def test_a_newline_in_a_value_stays_inside_its_line(logged: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    logged.test_client().get('/api/v1/nothing%0A{"event":"forged"}%0D%0A')

    (line,) = lines(capsys)
    assert line["path"] == '/api/v1/nothing\n{"event":"forged"}\r\n'


def test_a_unicode_line_break_or_c1_control_stays_escaped_in_a_json_line(
    logged: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    """Valid JSON may carry U+2028 and the C1 controls raw; a reader splitting on Unicode line breaks, or a
    terminal taking U+009B for an escape, must still see one line, as json.dumps wrote it."""
    logged.test_client().get("/api/v1/nothing%E2%80%A8forged%C2%9B2J%E2%80%A9")

    (raw,) = capsys.readouterr().err.splitlines()
    assert "\\u2028forged\\u009b2J\\u2029" in raw
    assert json.loads(raw)["path"] == "/api/v1/nothing\u2028forged\x9b2J\u2029"


def test_a_control_character_cannot_forge_a_text_line(app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    text_app = create_app(settings(DATABASE_URL=app.config["DATABASE_URL"]))
    forged = "2026-01-01T00:00:00.000Z INFO    app.security: login.succeeded"
    text_app.test_client().get(f"/api/v1/nothing%0A{forged}%0D%1B[2J%E2%80%A8")

    (line,) = capsys.readouterr().err.splitlines()
    assert f"path=/api/v1/nothing\\n{forged}\\r\\x1b[2J\\u2028 " in line


def test_development_logs_are_text_for_people(app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    text_app = create_app(settings(DATABASE_URL=app.config["DATABASE_URL"]))
    text_app.test_client().get("/api/v1/health/live", headers={"X-Request-ID": "dev-1"})

    (line,) = capsys.readouterr().err.splitlines()
    assert UTC_TIME.match(line)
    assert " INFO    app.access: request method=GET path=/api/v1/health/live " in line
    assert "status=200" in line and "request_id=dev-1" in line


def test_production_logs_json_by_default_and_the_format_is_checked() -> None:
    assert create_app(production(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")).config["LOG_FORMAT"] == "json"
    assert create_app(settings()).config["LOG_FORMAT"] == "text"
    with pytest.raises(ConfigError, match="CFG003 LOG_FORMAT"):
        create_app(settings(LOG_FORMAT="xml"))
