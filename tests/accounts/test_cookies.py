"""Optional cookie mode for browser apps: HttpOnly cookies and a CSRF double submit."""

from http.cookies import SimpleCookie

import pytest
from flask import Flask, session
from flask.testing import FlaskClient

from app import create_app
from tests.support.app import PASSWORD, assert_problem, make_user, settings


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
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookies.update(SimpleCookie(header))
    for name in ("access_token_cookie", "refresh_token_cookie"):
        assert cookies[name]["httponly"] and cookies[name]["secure"] and cookies[name]["samesite"] == "Strict"
    assert cookies["refresh_token_cookie"]["path"] == "/api/v1/auth/"
    assert not cookies["csrf_access_token"]["httponly"]  # the page must read it to echo it


def test_writes_need_the_csrf_header_reads_do_not(browser: tuple[FlaskClient, str]) -> None:
    client, email = browser
    client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert client.get("/api/v1/users/me").status_code == 200
    assert_problem(client.patch("/api/v1/users/me", json={"display_name": "X"}), 401, "csrf_failed")
    csrf = client.get_cookie("csrf_access_token", path="/").value  # type: ignore[union-attr]
    ok = client.patch("/api/v1/users/me", json={"display_name": "X"}, headers={"X-CSRF-TOKEN": csrf})
    assert ok.status_code == 200


def test_refresh_and_logout_work_with_cookies(browser: tuple[FlaskClient, str]) -> None:
    client, email = browser
    client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    csrf = client.get_cookie("csrf_refresh_token", path="/").value  # type: ignore[union-attr]
    assert client.post("/api/v1/auth/refresh", headers={"X-CSRF-TOKEN": csrf}).status_code == 200
    csrf = client.get_cookie("csrf_access_token", path="/").value  # type: ignore[union-attr]
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-TOKEN": csrf}).status_code == 204
    assert client.get_cookie("access_token_cookie", path="/api/") is None
    assert_problem(client.get("/api/v1/users/me"), 401)
