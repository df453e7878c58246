"""Optional cookie mode for browser apps: HttpOnly cookies and a CSRF double submit."""

from datetime import timedelta
from http.cookies import Morsel, SimpleCookie
from typing import Any

import pytest
from flask import Flask, session
from flask.testing import FlaskClient

from app import create_app
from tests.support.app import PASSWORD, assert_problem, make_user, settings

NAMES = ("__Host-access_token", "__Host-refresh_token", "__Host-csrf_access", "__Host-csrf_refresh")


def set_cookies(response: Any) -> dict[str, Morsel[str]]:
    """The cookies a response sets, by name."""
    cookies: dict[str, Morsel[str]] = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookies.update(SimpleCookie(header))
    return cookies


@pytest.fixture
def browser(database_app: Flask, app: Flask) -> tuple[FlaskClient, str]:
    cookie_app = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], AUTH_COOKIES=True))
    client = cookie_app.test_client()
    email = make_user(app).email
    return client, email


def test_cookies_are_off_by_default(client: FlaskClient, app: Flask) -> None:
    user = make_user(app)
    response = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert "Set-Cookie" not in response.headers
    assert response.get_json()["token_type"] == "Bearer"


def test_the_app_keeps_no_cookie_session(app: Flask) -> None:
    # Identity comes from tokens alone: Flask's signed session cookie is never opened or written.
    with app.test_request_context("/api/v1/users/me"), pytest.raises(RuntimeError, match="session is unavailable"):
        session["user_id"] = "someone"


def test_login_sets_hardened_cookies_and_keeps_tokens_out_of_the_body(browser: tuple[FlaskClient, str]) -> None:
    client, email = browser
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.get_json()) == {"token_type", "expires_in"}
    cookies = set_cookies(response)
    assert set(cookies) == {*NAMES, "__Host-device"}
    for name in NAMES[:2]:
        assert cookies[name]["httponly"] and cookies[name]["samesite"] == "Strict"
    for name in NAMES:
        # What a browser demands of a __Host- cookie: so no subdomain or sibling path can plant or shadow one.
        assert cookies[name]["secure"] and cookies[name]["path"] == "/" and not cookies[name]["domain"]
    assert not cookies["__Host-csrf_access"]["httponly"]  # the page must read it to echo it


def test_the_device_cookie_marks_a_known_client_and_lets_its_owner_past_strangers_guesses(
    database_app: Flask, app: Flask
) -> None:
    limits = {"RATELIMIT_LOGIN_ACCOUNT": "2 per 15 minutes"}
    client = create_app(
        settings(DATABASE_URL=database_app.config["DATABASE_URL"], AUTH_COOKIES=True, **limits)
    ).test_client()
    email = make_user(app).email
    device = set_cookies(client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}))[
        "__Host-device"
    ]
    assert device["httponly"] and device["secure"] and device["path"] == "/" and not device["domain"]
    stranger = client.application.test_client()
    for _ in range(3):
        stranger.post("/api/v1/auth/login", json={"email": email, "password": "wrong " * 4})
    assert_problem(stranger.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}), 429)
    assert client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200


def test_cookies_live_as_long_as_the_session_not_a_year(browser: tuple[FlaskClient, str]) -> None:
    client, email = browser
    session_life = timedelta(days=14).total_seconds()  # JWT_REFRESH_TOKEN_DAYS
    cookies = set_cookies(client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}))
    for name in NAMES:
        assert session_life - 60 <= int(cookies[name]["max-age"]) <= session_life, (name, cookies[name]["max-age"])
    csrf = client.get_cookie("__Host-csrf_refresh").value  # type: ignore[union-attr]
    refreshed = set_cookies(client.post("/api/v1/auth/refresh", headers={"X-CSRF-TOKEN": csrf}))
    # Refreshing never extends a session, so neither does it extend its cookies.
    assert all(int(refreshed[name]["max-age"]) <= int(cookies[name]["max-age"]) for name in NAMES)


def test_writes_need_the_csrf_header_reads_do_not(browser: tuple[FlaskClient, str]) -> None:
    client, email = browser
    client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert client.get("/api/v1/users/me").status_code == 200
    assert_problem(client.patch("/api/v1/users/me", json={"display_name": "X"}), 401, "csrf_failed")
    csrf = client.get_cookie("__Host-csrf_access").value  # type: ignore[union-attr]
    ok = client.patch("/api/v1/users/me", json={"display_name": "X"}, headers={"X-CSRF-TOKEN": csrf})
    assert ok.status_code == 200


def test_refresh_and_logout_work_with_cookies(browser: tuple[FlaskClient, str]) -> None:
    client, email = browser
    client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    csrf = client.get_cookie("__Host-csrf_refresh").value  # type: ignore[union-attr]
    assert client.post("/api/v1/auth/refresh", headers={"X-CSRF-TOKEN": csrf}).status_code == 200
    csrf = client.get_cookie("__Host-csrf_access").value  # type: ignore[union-attr]
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-TOKEN": csrf}).status_code == 204
    assert client.get_cookie("__Host-access_token") is None
    assert_problem(client.get("/api/v1/users/me"), 401)
