"""Where a request came from, as the app believes it: URLs it builds start with PUBLIC_URL, whatever
Host a caller sends."""

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from app import create_app
from app.core import mail
from app.core.config import ConfigError
from app.toolkit.markers import public
from tests.support.app import PASSWORD, Account, make_user, production, settings

PUBLIC = "https://api.example.com"
FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}


def public_app(database_app: Flask, **overrides: Any) -> Flask:
    return create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], PUBLIC_URL=PUBLIC, **overrides))


@pytest.mark.parametrize("hops", [0, 1], ids=["no proxy", "behind a proxy"])
def test_a_forged_host_reaches_no_link_and_no_redirect(app: Flask, database_app: Flask, hops: int) -> None:
    client = public_app(database_app, PROXY_HOPS=hops).test_client()
    for _ in range(2):
        make_user(app)
    admin = Account(client, "", make_user(app, role="admin").email, PASSWORD)
    admin.login()

    page = client.get("/api/v1/users?limit=1", headers={**admin.headers, **FORGED})
    assert page.headers["Link"].startswith(f"<{PUBLIC}/api/v1/users?")
    # Werkzeug's own redirect, for a path with doubled slashes (PATH_INFO as a server passes it).
    merged = client.get("/", environ_overrides={"PATH_INFO": "//api/v1//health/live"}, headers=FORGED)
    assert (merged.status_code, merged.headers["Location"]) == (308, f"{PUBLIC}/api/v1/health/live")


@pytest.mark.parametrize("frontend", ["", "https://app.example.com"], ids=["bare token", "frontend link"])
def test_a_forged_host_reaches_no_mail(database_app: Flask, frontend: str) -> None:
    app = public_app(database_app, FRONTEND_URL=frontend)
    user = make_user(app)
    sent = mail.outbox(app)
    app.test_client().post("/api/v1/auth/password-reset", json={"email": user.email}, headers=FORGED)
    assert sent and "evil.example" not in sent[-1].as_string()


def test_development_without_a_public_url_builds_links_on_the_requests_host(
    client: FlaskClient, admin: Account, make_account: Any
) -> None:
    """make run needs no setting: links point wherever the developer's browser or curl called."""
    make_account()
    page = client.get("/api/v1/users?limit=1", headers={**admin.headers, "Host": "127.0.0.1:8000"})
    assert page.headers["Link"].startswith("<http://127.0.0.1:8000/api/v1/users?")


def test_production_needs_a_public_url() -> None:
    with pytest.raises(ConfigError, match="SEC009 PUBLIC_URL"):
        create_app(production(PUBLIC_URL=""))
    assert create_app(production()).config["PUBLIC_URL"]


@pytest.mark.parametrize(
    "url",
    ["api.example.com", "ftp://api.example.com", "https://api.example.com/v1", "https://", "https://u:p@x.example"],
)
def test_a_public_url_must_be_an_origin(url: str) -> None:
    with pytest.raises(ConfigError, match="CFG005 PUBLIC_URL"):
        create_app(settings(PUBLIC_URL=url))


def witness(app: Flask) -> Callable[[str, dict[str, str]], tuple[str | None, str]]:
    """ask(peer, headers): the client address and scheme the app believes for a request from `peer`."""
    seen: list[tuple[str | None, str]] = []
    app.get("/ip")(public(lambda: seen.append((request.remote_addr, request.scheme)) or ""))

    def ask(peer: str, headers: dict[str, str]) -> tuple[str | None, str]:
        app.test_client().get("/ip", headers=headers, environ_base={"REMOTE_ADDR": peer})
        return seen[-1]

    return ask


@pytest.mark.parametrize("allowed", ["10.0.0.2", "10.0.0.0/8,192.168.0.0/16", "::1, 10.0.0.2"])
def test_forwarded_headers_count_only_from_a_configured_proxy(allowed: str) -> None:
    ask = witness(create_app(settings(PROXY_HOPS=1, FORWARDED_ALLOW_IPS=allowed)))
    forwarded = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https"}
    assert ask("10.0.0.2", forwarded) == ("198.51.100.7", "https")  # the proxy saw the client
    assert ask("203.0.113.9", forwarded) == ("203.0.113.9", "http")  # a direct client's own claim
    assert ask("::ffff:10.0.0.2", forwarded) == ("198.51.100.7", "https")  # IPv4 over IPv6


def test_a_direct_client_cannot_escape_a_per_ip_limit_with_forwarded_for(limited: Any) -> None:
    client = limited(PROXY_HOPS=1, FORWARDED_ALLOW_IPS="10.0.0.2", RATELIMIT_LOGIN_IP="3 per minute").test_client()
    body = {"email": "nobody@example.com", "password": PASSWORD}
    statuses = [
        client.post(
            "/api/v1/auth/login",
            json=body,
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        ).status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


@pytest.mark.parametrize("allowed", ["nginx", "10.0.0.300", "10.0.0.0/33"])
def test_proxy_addresses_must_be_addresses_or_networks(allowed: str) -> None:
    with pytest.raises(ConfigError, match="CFG006 FORWARDED_ALLOW_IPS"):
        create_app(settings(PROXY_HOPS=1, FORWARDED_ALLOW_IPS=allowed))


def test_production_refuses_to_trust_forwarded_headers_from_anyone() -> None:
    with pytest.raises(ConfigError, match="SEC010 FORWARDED_ALLOW_IPS"):
        create_app(production(PROXY_HOPS=1, FORWARDED_ALLOW_IPS="*"))
    assert create_app(production(PROXY_HOPS=0, FORWARDED_ALLOW_IPS="*"))  # no forwarded header is read
    assert create_app(production(PROXY_HOPS=1, FORWARDED_ALLOW_IPS="10.0.0.0/8"))
