"""Security defaults: headers on every response, token claims, input limits."""

import time
import uuid
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.support.app import PASSWORD, SECRET, Account, assert_problem, bearer, settings

ME = "/api/v1/users/me"


# --- headers --------------------------------------------------------------------------------


def sample_responses(client: FlaskClient, user: Account) -> dict[str, Any]:
    return {
        "200 api": client.get(ME, headers=user.headers),
        "401": client.get(ME),
        "404": client.get("/no/such/page"),
        "422": client.post("/api/v1/auth/login", json={}),
        "200 spec": client.get("/api/v1/swagger.json"),
        "200 docs": client.get("/swagger"),
    }


def test_every_response_carries_the_security_headers(client: FlaskClient, user: Account) -> None:
    for name, response in sample_responses(client, user).items():
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["Referrer-Policy"] == "no-referrer", name
        assert headers["X-Frame-Options"] == "DENY", name
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], name
        assert "Strict-Transport-Security" not in headers, name  # plain HTTP here


def test_json_is_locked_down_and_only_the_docs_page_may_run_its_own_scripts(client: FlaskClient, user: Account) -> None:
    responses = sample_responses(client, user)
    assert responses["200 api"].headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert "script-src" not in responses["200 api"].headers["Content-Security-Policy"]
    docs_csp = responses["200 docs"].headers["Content-Security-Policy"]
    assert "script-src 'self'" in docs_csp and "unsafe-eval" not in docs_csp
    assert "<script>" not in responses["200 docs"].get_data(as_text=True)  # no inline script to allow


def test_auth_and_user_data_are_never_cached(client: FlaskClient, user: Account) -> None:
    assert client.get(ME, headers=user.headers).headers["Cache-Control"] == "no-store"
    login = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.headers["Cache-Control"] == "no-store"


def test_hsts_when_served_over_https_behind_the_proxy(database_app: Flask) -> None:
    app = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], PROXY_HOPS=1))
    response = app.test_client().get("/api/v1/health/live", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_accept_never_changes_the_content_type(client: FlaskClient, user: Account) -> None:
    response = client.get(ME, headers={**user.headers, "Accept": "application/xml"})
    assert response.mimetype in {"application/json", "application/problem+json"}


# --- token claims ---------------------------------------------------------------------------


def test_issued_tokens_carry_issuer_and_audience(user: Account) -> None:
    for token in (user.tokens["access_token"], user.tokens["refresh_token"]):
        claims = pyjwt.decode(token, SECRET, algorithms=["HS256"], audience="flask-api-starter")
        assert claims["iss"] == "flask-api-starter"


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"exp": None},
        {"jti": None},
        {"type": None},
        {"type": "admin"},
        {"sub": None},
        {"iat": int(time.time()) + 3600, "nbf": int(time.time()) + 3600},
    ],
    ids=lambda change: ",".join(f"{k}={v}" for k, v in change.items()),
)
def test_tokens_without_the_required_claims_are_401(client: FlaskClient, user: Account, change: dict[str, Any]) -> None:
    claims = pyjwt.decode(user.tokens["access_token"], options={"verify_signature": False})
    claims.update(change)
    token = pyjwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")
    assert_problem(client.get(ME, headers=bearer(token)), 401)


def test_a_token_accepted_before_is_refused_once_it_expires(client: FlaskClient, user: Account) -> None:
    """Verified tokens are remembered between requests; the expiry is still checked on every one."""
    claims = pyjwt.decode(user.tokens["access_token"], options={"verify_signature": False})
    claims["exp"] = int(time.time()) + 2
    token = pyjwt.encode(claims, SECRET, algorithm="HS256")
    assert client.get(ME, headers=bearer(token)).status_code == 200
    time.sleep(claims["exp"] - time.time() + 0.1)
    assert_problem(client.get(ME, headers=bearer(token)), 401, "token_expired")


# --- input limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"email": ' + "1" * 100_000 + "}", 400),  # a number too long to parse
        ('{"email": "a@example.com", "password": ' + "9" * 5000 + "}", 400),
        ('{"email": [' + ",".join(["1"] * 100_000) + "]}", 422),  # a huge list where a string goes
        ('{"email": "' + "a" * 300 + '@example.com"}', 422),  # an over-long string
        ("[" * 50_000 + "]" * 50_000, 400),  # deep nesting
    ],
    ids=["huge number", "number too long", "huge list", "long string", "deep nesting"],
)
def test_hostile_bodies_get_a_clean_4xx(client: FlaskClient, body: str, status: int) -> None:
    assert_problem(client.post("/api/v1/auth/register", data=body, content_type="application/json"), status)


DEEP = "[" * 50_000 + "]" * 50_000
LONE = "\\ud800"  # a lone UTF-16 surrogate: valid JSON, but no UTF-8 encoding exists for it


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("login", '{"email": "a@example.com", "password": ' + DEEP + "}", 400),
        ("login", '{"email": "a@example.com", "password": "x", "deep": ' + DEEP + "}", 400),
        ("password-reset", '{"email": ' + DEEP + "}", 400),
        ("password-reset", DEEP, 400),
        ("login", '{"email": "a@example.com", "password": "' + LONE + ' correct horse battery"}', 422),
        ("register", '{"email": "a@example.com", "password": "' + LONE + ' correct horse", "display_name": "A"}', 422),
        ("register", '{"email": "a@example.com", "password": "battery staple", "display_name": "' + LONE + '"}', 422),
        ("login", '{"email": "a@ex' + LONE + 'ample.com", "password": "correct horse battery"}', 422),
        ("password-reset", '{"email": "a@ex' + LONE + 'ample.com"}', 422),
        ("login", '{"' + LONE + '": 1}', 422),
    ],
    ids=[
        "deep password",
        "deep extra field",
        "deep email",
        "deep array",
        "lone surrogate in a password",
        "lone surrogate in a new password",
        "lone surrogate in a name",
        "lone surrogate in an email",
        "lone surrogate in a reset email",
        "lone surrogate as a key",
    ],
)
def test_malformed_auth_bodies_get_a_clean_4xx(client: FlaskClient, path: str, body: str, status: int) -> None:
    response = client.post(f"/api/v1/auth/{path}", data=body, content_type="application/json")
    assert_problem(response, status)


@pytest.mark.parametrize("term", ["%", "_", "' OR 1=1--", "\\", "%%_%"])
def test_filter_metacharacters_match_literally(client: FlaskClient, make_account: Any, term: str) -> None:
    admin = make_account(role="admin", display_name="Admin")
    make_account(display_name="Plain Name")
    response = client.get("/api/v1/users", query_string={"name": term}, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["items"] == []


def test_a_nul_byte_in_a_filter_is_422(client: FlaskClient, admin: Account) -> None:
    assert_problem(client.get("/api/v1/users?name=a%00b", headers=admin.headers), 422)


def test_ids_in_urls_are_random_uuids(client: FlaskClient, make_account: Any) -> None:
    ids = [uuid.UUID(make_account().id) for _ in range(3)]
    assert all(i.version == 4 for i in ids) and len(set(ids)) == 3
