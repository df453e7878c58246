"""Settings, the production guard, CORS and the docs switch."""

import base64
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.core.config import SETTINGS, ConfigError, database_url, secret_problems
from app.core.extensions import db
from tests.support.app import JWT_SECRET, ROOT, SECRET, production, settings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg2://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("sqlite:///app.db", "sqlite:///app.db"),
    ],
)
def test_postgres_urls_use_psycopg2(url: str, expected: str) -> None:
    assert database_url(url) == expected


def test_the_engine_for_a_plain_postgres_url_is_psycopg2() -> None:
    app = create_app(settings(DATABASE_URL="postgres://nobody@127.0.0.1:1/none"))
    with app.app_context():
        assert (db.engine.dialect.name, db.engine.dialect.driver) == ("postgresql", "psycopg2")


def test_the_default_database_is_a_sqlite_file_in_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app(settings())
    with app.app_context():
        assert db.engine.url.database == str(Path(app.instance_path) / "app.db")


@pytest.mark.parametrize(
    ("overrides", "setting", "rule"),
    [
        ({"JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY", "SEC001"),
        ({"SECRET_KEY": ""}, "SECRET_KEY", "SEC001"),
        ({"JWT_SECRET_KEY": "change-me-to-a-long-random-value-of-48-bytes"}, "JWT_SECRET_KEY", "SEC002"),
        ({"JWT_SECRET_KEY": "short-but-random-Q7x"}, "JWT_SECRET_KEY", "SEC003"),
        ({"JWT_SECRET_KEY": "CHANGE-ME-TO-A-LONG-RANDOM-VALUE-Q7x9Z"}, "JWT_SECRET_KEY", "SEC002"),
        ({"SECRET_KEY": "ChangeMe" + secrets.token_urlsafe(32)}, "SECRET_KEY", "SEC002"),
        ({"SECRET_KEY": "abababababababababababababababababab"}, "SECRET_KEY", "SEC004"),
        ({"SECRET_KEY": "abcde" * 8}, "SECRET_KEY", "SEC004"),
        ({"SECRET_KEY": "abcde" * 30}, "SECRET_KEY", "SEC004"),
        ({"JWT_SECRET_KEY": "aB3$" * 20}, "JWT_SECRET_KEY", "SEC004"),
        ({"JWT_SECRET_KEY": "correct horse battery staple is our signing key"}, "JWT_SECRET_KEY", "SEC004"),
        ({"JWT_SECRET_KEY": "Correct Horse Battery Staple Is Our Signing Key"}, "JWT_SECRET_KEY", "SEC004"),
        ({"SECRET_KEY": "my-flask-secret-key-for-the-production-site"}, "SECRET_KEY", "SEC004"),
        ({"SECRET_KEY": "MY_FLASK_SECRET_KEY_FOR_THE_PRODUCTION_SITE"}, "SECRET_KEY", "SEC004"),
        ({"SECRET_KEY": "31415926535897932384626433832795028841971"}, "SECRET_KEY", "SEC004"),
        ({"SECRET_KEY": JWT_SECRET}, "SECRET_KEY and JWT_SECRET_KEY", "SEC007"),
        ({"MAIL_BACKEND": "console"}, "MAIL_BACKEND", "SEC008"),  # it writes reset tokens to the log
        ({"FLASK_DEBUG": True}, "FLASK_DEBUG", "SEC005"),
        ({"RATELIMIT_STORAGE_URI": "memory://"}, "RATELIMIT_STORAGE_URI", "SEC006"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, Any], setting: str, rule: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_app(production(**overrides))
    message = str(error.value)
    assert rule in message and setting in message
    for value in overrides.values():
        if isinstance(value, str) and value:
            assert value not in message  # name the setting, never its value


def test_production_starts_with_strong_secrets() -> None:
    keys = {"SECRET_KEY": secrets.token_urlsafe(48), "JWT_SECRET_KEY": secrets.token_urlsafe(48)}
    assert create_app(production(**keys)).config["APP_ENV"] == "production"


@pytest.mark.parametrize(
    "generate",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    ],
    ids=["token_urlsafe(32)", "token_urlsafe(48)", "token_hex(32)", "base64 of 32 bytes"],
)
def test_every_usual_way_to_generate_32_random_bytes_passes(generate: Callable[[], str]) -> None:
    assert [problems for _ in range(2000) if (problems := secret_problems("SECRET_KEY", generate()))] == []


def test_production_refuses_to_boot_from_the_entry_point() -> None:
    weak = "weak-secret-value"
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": SECRET, "JWT_SECRET_KEY": weak}
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT / "tests",
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "JWT_SECRET_KEY" in result.stderr and "SEC003" in result.stderr
    assert weak not in result.stderr


def test_development_without_secrets_uses_a_random_key_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        first = create_app({"TESTING": True, "SECRET_KEY": "", "JWT_SECRET_KEY": ""})
        second = create_app({"TESTING": True, "SECRET_KEY": "", "JWT_SECRET_KEY": ""})
    assert len(first.config["JWT_SECRET_KEY"]) >= 32
    assert first.config["JWT_SECRET_KEY"] != second.config["JWT_SECRET_KEY"]
    assert "JWT_SECRET_KEY is not set" in caplog.text


def test_unknown_app_env_is_refused() -> None:
    with pytest.raises(ConfigError, match="APP_ENV"):
        create_app(settings(APP_ENV="staging"))


def documented_settings(path: Path) -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", path.read_text(), re.MULTILINE))


def test_env_example_documents_every_setting() -> None:
    assert set(SETTINGS) <= documented_settings(ROOT / ".env.example")


def test_configuration_docs_list_every_setting() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert not [name for name in SETTINGS if f"`{name}`" not in docs]


def test_cors_is_closed_by_default_and_opens_exactly(database_app: Flask) -> None:
    url = database_app.config["DATABASE_URL"]
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    closed = create_app(settings(DATABASE_URL=url)).test_client()
    assert "Access-Control-Allow-Origin" not in closed.options("/api/v1/auth/login", headers=preflight).headers

    opened = create_app(settings(DATABASE_URL=url, CORS_ORIGINS=["https://app.example"])).test_client()
    allowed = opened.options("/api/v1/auth/login", headers=preflight)
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    foreign = opened.options("/api/v1/auth/login", headers={**preflight, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_client_ip_comes_from_exactly_the_trusted_proxies(database_app: Flask) -> None:
    """Without a proxy, X-Forwarded-For is the client's own claim and must be ignored."""
    from flask import request

    from app.toolkit.markers import public

    seen = []
    for hops in (0, 1):
        app = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], PROXY_HOPS=hops))
        app.get("/ip")(public(lambda: seen.append(request.remote_addr) or ""))
        app.test_client().get(
            "/ip", headers={"X-Forwarded-For": "6.6.6.6, 10.0.0.7"}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
        )
    assert seen == ["127.0.0.1", "10.0.0.7"]  # one hop: the address nginx saw, not the spoofed one


def test_docs_can_be_switched_off(database_app: Flask) -> None:
    client = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], DOCS_ENABLED=False)).test_client()
    assert client.get("/swagger").status_code == 404
    assert client.get("/api/v1/swagger.json").status_code == 404
    assert client.get("/api/v1/health/live").status_code == 200
