"""Registration, login, the token lifecycle and what makes a token stop working."""

import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app import create_app
from app.accounts.models import RefreshSession, RevokedToken, User
from app.core.database import utcnow
from app.core.extensions import db
from tests.support.app import PASSWORD, SECRET, Account, assert_problem, bearer, claims, make_user, register, settings

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


def forge(payload: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return pyjwt.encode(payload, key, algorithm=algorithm)


# --- registration -------------------------------------------------------------------------


def test_register_creates_a_user_with_a_normalised_email(client: FlaskClient) -> None:
    response = register(client, email="  Ada@Example.COM ")
    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "ada@example.com"
    assert body["role"] == "user" and body["is_active"] is True
    assert uuid.UUID(body["id"]).version == 4
    assert "password" not in body and "password_hash" not in body
    assert response.headers["Location"].endswith(f"/api/v1/users/{body['id']}")


@pytest.mark.parametrize("extra", [{"role": "admin"}, {"is_active": False}, {"id": str(uuid.uuid4())}])
def test_register_rejects_fields_a_caller_must_not_set(client: FlaskClient, app: Flask, extra: dict[str, Any]) -> None:
    body = assert_problem(register(client, **extra), 422, "validation_failed")
    assert body["errors"] == {next(iter(extra)): ["Unknown field."]}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "a" * 14),  # below the default minimum of 15
        ("password", "a" * 1025),  # above the cap that bounds hashing cost
        ("email", "not-an-email"),
        ("display_name", ""),
        ("display_name", "Ada\x00"),
        ("password", None),
    ],
)
def test_register_validates_each_field(client: FlaskClient, field: str, value: Any) -> None:
    body = assert_problem(register(client, **{field: value}), 422, "validation_failed")
    assert list(body["errors"]) == [field]


@pytest.mark.parametrize(
    "password",
    ["violet anchor tide", "lowercaseonlyplease", "x" * 14 + "y", "пароль-из-юникода-🙂", "a" * 1000 + "bcdefg"],
)
def test_passwords_need_no_composition_rules(client: FlaskClient, password: str) -> None:
    assert register(client, password=password).status_code == 201


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("ada@example.com", "1qaz2wsx3edc4rfv", "too common"),  # from the bundled list
        ("ada@example.com", "Quokka Quokka Quokka", "repeated"),  # the same once spaces and case go
        ("ada@example.com", "abcabcabcabcabcabc", "repeated"),
        ("ada@example.com", "ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ", "repeated"),  # on no breach list, so the rule of its own
        ("ada@example.com", "my flask-api-starter key", "name of this service"),
        ("lovelace@example.com", "i am LoveLace the first", "email address"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(client: FlaskClient, email: str, password: str, reason: str) -> None:
    body = assert_problem(register(client, email=email, password=password), 422, "validation_failed")
    assert list(body["errors"]) == ["password"] and reason in body["errors"]["password"][0]


def test_register_with_a_taken_email_in_any_case_is_409(client: FlaskClient) -> None:
    assert register(client).status_code == 201
    body = assert_problem(register(client, email="ADA@example.com"), 409, "conflict")
    assert body["errors"] == {"email": ["Already taken."]}


def test_passwords_are_stored_as_salted_argon2id(client: FlaskClient, app: Flask) -> None:
    register(client, email="a@example.com")
    register(client, email="b@example.com")
    with app.app_context():
        hashes = list(db.session.scalars(select(User.password_hash)))
    assert all(h.startswith("$argon2id$v=19$m=7168,t=5,p=1$") for h in hashes)
    assert hashes[0] != hashes[1]


# --- login --------------------------------------------------------------------------------


def test_login_returns_a_token_pair_with_string_identity(user: Account, app: Flask) -> None:
    tokens = user.tokens
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    access, refresh = claims(tokens["access_token"]), claims(tokens["refresh_token"])
    assert access["sub"] == user.id and access["type"] == "access"
    assert access["exp"] - access["iat"] == 900
    assert refresh["type"] == "refresh" and refresh["sid"] == access["sid"]
    assert abs(refresh["exp"] - refresh["iat"] - 14 * 86400) <= 2
    assert pyjwt.get_unverified_header(tokens["access_token"])["alg"] == "HS256"


def test_unknown_email_and_wrong_password_look_the_same(
    client: FlaskClient, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    verify_calls = []
    real_verify = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: verify_calls.append(1) or real_verify(self, h, p))

    unknown = client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    assert len(verify_calls) == 1  # one hash even though there is no account
    wrong = client.post(LOGIN, json={"email": user.email, "password": PASSWORD + "!"})
    assert len(verify_calls) == 2

    for response in (unknown, wrong):
        assert_problem(response, 401, "invalid_credentials")
    strip = lambda r: {k: v for k, v in r.get_json().items() if k != "request_id"}  # noqa: E731
    assert strip(unknown) == strip(wrong)


def test_login_is_case_insensitive_on_email(client: FlaskClient, user: Account) -> None:
    assert client.post(LOGIN, json={"email": user.email.upper(), "password": PASSWORD}).status_code == 200


def test_disabled_account_cannot_log_in(client: FlaskClient, app: Flask) -> None:
    disabled = make_user(app, is_active=False)
    assert_problem(client.post(LOGIN, json={"email": disabled.email, "password": PASSWORD}), 401, "invalid_credentials")


@pytest.mark.parametrize(
    ("memory_cost", "time_cost"),
    [(19456, 2), (8192, 1)],  # what this starter stored before it moved to m=7 MiB, t=5; a weak one
)
def test_login_rehashes_a_password_stored_with_old_parameters(
    client: FlaskClient, app: Flask, memory_cost: int, time_cost: int
) -> None:
    account = make_user(app)
    old = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1).hash(PASSWORD)
    with app.app_context():
        db.session.get_one(User, account.id).password_hash = old
        db.session.commit()
    assert_problem(client.post(LOGIN, json={"email": account.email, "password": "wrong" + PASSWORD}), 401)
    with app.app_context():
        assert db.session.get_one(User, account.id).password_hash == old  # only a correct password rehashes
    assert client.post(LOGIN, json={"email": account.email, "password": PASSWORD}).status_code == 200
    with app.app_context():
        stored = db.session.get_one(User, account.id).password_hash
    assert stored != old and stored.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
    assert client.post(LOGIN, json={"email": account.email, "password": PASSWORD}).status_code == 200


# --- refresh rotation and reuse detection -----------------------------------------------


def age_rotation(app: Flask, refresh_token: str, seconds: float) -> None:
    """Move the session's last rotation `seconds` into the past, as if that long had gone by since."""
    with app.app_context():
        session = db.session.get(RefreshSession, uuid.UUID(claims(refresh_token)["sid"]))
        assert session is not None and session.rotated_at is not None
        session.rotated_at -= timedelta(seconds=seconds)
        db.session.commit()


def test_refresh_rotates_and_reuse_after_the_grace_window_ends_the_whole_session(
    client: FlaskClient, user: Account, app: Flask
) -> None:
    first = user.tokens
    second = client.post(REFRESH, headers=bearer(first["refresh_token"]))
    assert second.status_code == 200
    second_tokens = second.get_json()
    assert second_tokens["refresh_token"] != first["refresh_token"]
    assert claims(second_tokens["refresh_token"])["exp"] <= claims(first["refresh_token"])["exp"]  # never extends
    assert client.get(ME, headers=bearer(second_tokens["access_token"])).status_code == 200

    # Replaying the rotated token once the grace window is over is theft or a bug: the whole family ends.
    age_rotation(app, first["refresh_token"], app.config["REFRESH_GRACE_SECONDS"] + 1)
    assert_problem(client.post(REFRESH, headers=bearer(first["refresh_token"])), 401, "refresh_token_reused")
    assert_problem(client.post(REFRESH, headers=bearer(second_tokens["refresh_token"])), 401, "invalid_token")
    assert_problem(client.get(ME, headers=bearer(second_tokens["access_token"])), 401, "invalid_token")


def test_two_refreshes_at_once_both_get_a_working_pair_of_the_same_session(
    app: Flask, make_account: Callable[..., Account]
) -> None:
    """Two tabs, or a retry after a lost answer: both refresh one token at the same moment. Neither may
    end the session, and the pair each gets keeps working (8 rounds: one alone could pass by luck)."""
    for _ in range(8):
        account = make_account()
        barrier = threading.Barrier(2)

        def use(_: int, token: str = account.tokens["refresh_token"], barrier: threading.Barrier = barrier) -> Any:
            client = app.test_client()
            barrier.wait()
            return client.post(REFRESH, headers=bearer(token))

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(use, range(2)))
        assert [answer.status_code for answer in answers] == [200, 200], [a.get_json() for a in answers]
        pairs = [answer.get_json() for answer in answers]
        client = app.test_client()
        assert {claims(pair["refresh_token"])["sid"] for pair in pairs} == {
            claims(account.tokens["refresh_token"])["sid"]
        }
        assert all(client.get(ME, headers=bearer(pair["access_token"])).status_code == 200 for pair in pairs)
        # The session goes on: each tab refreshes again, one after the other, and both still get in.
        for pair in pairs:
            again = client.post(REFRESH, headers=bearer(pair["refresh_token"]))
            assert again.status_code == 200, again.get_json()
            assert client.get(ME, headers=bearer(again.get_json()["access_token"])).status_code == 200


def test_within_the_window_only_the_token_just_rotated_is_forgiven(client: FlaskClient, user: Account) -> None:
    first = user.tokens["refresh_token"]
    second = client.post(REFRESH, headers=bearer(first)).get_json()
    third = client.post(REFRESH, headers=bearer(second["refresh_token"])).get_json()
    # Two rotations old: no client racing itself holds it, so it is a replay even seconds later.
    assert_problem(client.post(REFRESH, headers=bearer(first)), 401, "refresh_token_reused")
    assert_problem(client.get(ME, headers=bearer(third["access_token"])), 401, "invalid_token")


def test_a_session_unused_for_longer_than_the_idle_timeout_ends(
    client: FlaskClient, user: Account, app: Flask, make_account: Callable[..., Account]
) -> None:
    idle = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
    active = make_account()
    with app.app_context():
        for account, unused in ((user, idle + timedelta(minutes=1)), (active, idle - timedelta(minutes=1))):
            db.session.execute(
                update(RefreshSession)
                .where(RefreshSession.id == uuid.UUID(claims(account.tokens["refresh_token"])["sid"]))
                .values(last_used_at=utcnow() - unused, created_at=utcnow() - unused)
            )
        db.session.commit()
    assert_problem(client.post(REFRESH, headers=bearer(user.tokens["refresh_token"])), 401, "session_expired")
    assert_problem(client.post(REFRESH, headers=bearer(user.tokens["refresh_token"])), 401, "invalid_token")
    # Used within the timeout: it goes on, and using it starts the idle clock again.
    refreshed = client.post(REFRESH, headers=bearer(active.tokens["refresh_token"]))
    assert refreshed.status_code == 200
    sessions = client.get("/api/v1/users/me/sessions", headers=bearer(refreshed.get_json()["access_token"]))
    assert utcnow() - datetime.fromisoformat(sessions.get_json()["items"][0]["last_used_at"]) < timedelta(minutes=1)


def test_token_types_are_not_interchangeable(client: FlaskClient, user: Account) -> None:
    assert_problem(client.post(REFRESH, headers=user.headers), 401, "invalid_token")
    assert_problem(client.get(ME, headers=bearer(user.tokens["refresh_token"])), 401, "invalid_token")


# --- logout and other ways a token stops working -----------------------------------------


def test_logout_revokes_the_access_and_refresh_token(client: FlaskClient, user: Account, app: Flask) -> None:
    other_session = Account(client, user.id, user.email, user.password)
    other_session.login()

    response = client.post(LOGOUT, headers=user.headers)
    assert response.status_code == 204 and response.data == b""
    assert_problem(client.get(ME, headers=user.headers), 401, "invalid_token")
    assert_problem(client.post(REFRESH, headers=bearer(user.tokens["refresh_token"])), 401, "invalid_token")
    with app.app_context():
        assert db.session.get(RevokedToken, claims(user.tokens["access_token"])["jti"]) is not None
    assert client.get(ME, headers=other_session.headers).status_code == 200  # only this session ended


def test_password_change_ends_the_other_sessions(client: FlaskClient, user: Account) -> None:
    other = Account(client, user.id, user.email, user.password)
    other.login()
    new_password = "a different long passphrase"

    wrong = client.post(
        f"{ME}/password", headers=user.headers, json={"current_password": "nope" * 4, "new_password": new_password}
    )
    assert assert_problem(wrong, 422)["errors"] == {"current_password": ["Incorrect password."]}

    response = client.post(
        f"{ME}/password", headers=user.headers, json={"current_password": PASSWORD, "new_password": new_password}
    )
    assert response.status_code == 204
    assert client.get(ME, headers=user.headers).status_code == 200  # this session goes on
    assert client.post(REFRESH, headers=bearer(user.tokens["refresh_token"])).status_code == 200
    assert_problem(client.get(ME, headers=other.headers), 401)
    assert_problem(client.post(REFRESH, headers=bearer(other.tokens["refresh_token"])), 401)
    assert client.post(LOGIN, json={"email": user.email, "password": PASSWORD}).status_code == 401
    assert client.post(LOGIN, json={"email": user.email, "password": new_password}).status_code == 200


@pytest.mark.parametrize("new_password", ["short", "1qaz2wsx3edc4rfv", "{local} is my password"])
def test_password_change_checks_the_new_password(client: FlaskClient, user: Account, new_password: str) -> None:
    new_password = new_password.format(local=user.email.partition("@")[0])
    body = {"current_password": PASSWORD, "new_password": new_password}
    response = client.post(f"{ME}/password", headers=user.headers, json=body)
    assert list(assert_problem(response, 422)["errors"]) == ["new_password"]


def test_disabled_and_deleted_users_lose_access_on_the_next_request(
    client: FlaskClient, make_account: Callable[..., Account], app: Flask
) -> None:
    disabled, deleted = make_account(), make_account()
    with app.app_context():
        db.session.get_one(User, uuid.UUID(disabled.id)).is_active = False
        db.session.delete(db.session.get_one(User, uuid.UUID(deleted.id)))
        db.session.commit()
    for account in (disabled, deleted):
        assert_problem(client.get(ME, headers=account.headers), 401, "invalid_token")
        assert_problem(client.post(REFRESH, headers=bearer(account.tokens["refresh_token"])), 401, "invalid_token")


# --- bad tokens are 401 with WWW-Authenticate, never 422 or 500 ---------------------------


def test_a_missing_token_is_401_with_a_bearer_challenge(client: FlaskClient) -> None:
    response = client.get(ME)
    assert_problem(response, 401, "missing_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def bad_tokens(user: Account) -> dict[str, str]:
    good = claims(user.tokens["access_token"])
    now = int(time.time())
    header, payload, signature = user.tokens["access_token"].split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    return {
        "alg none": pyjwt.encode(good, key=None, algorithm="none"),
        "HS512 with the real key": forge(good, algorithm="HS512"),
        "another key": forge(good, key="another-secret-that-is-long-enough-0123456789"),
        "flipped signature": f"{header}.{payload}.{flipped}",
        "expired": forge({**good, "iat": now - 1000, "nbf": now - 1000, "exp": now - 1}),
        "not yet valid": forge({**good, "nbf": now + 300}),
        "integer sub": forge({**good, "sub": 12345}),
        "no session id": forge({k: v for k, v in good.items() if k != "sid"}),
        "someone else's id": forge({**good, "sub": str(uuid.uuid4())}),
        "garbage": "not.a.jwt",
    }


def test_every_kind_of_bad_token_is_401(client: FlaskClient, user: Account) -> None:
    for name, token in bad_tokens(user).items():
        response = client.get(ME, headers=bearer(token))
        assert response.status_code == 401, name
        assert_problem(response, 401)
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"], name


@pytest.mark.parametrize("header", ["Token {t}", "Bearer Bearer {t}", "{t}", "Bearer"])
def test_a_malformed_authorization_header_is_401(client: FlaskClient, user: Account, header: str) -> None:
    response = client.get(ME, headers={"Authorization": header.format(t=user.tokens["access_token"])})
    assert_problem(response, 401)


def test_tokens_in_the_query_string_are_ignored(client: FlaskClient, user: Account) -> None:
    token = user.tokens["access_token"]
    assert_problem(client.get(f"{ME}?jwt={token}&access_token={token}"), 401, "missing_token")


def test_auth_errors_stay_401_outside_testing_mode(database_app: Flask, user: Account) -> None:
    """restx turns JWT errors into 500s unless exceptions propagate; TESTING hides that."""
    production_like = create_app(settings(TESTING=False, DATABASE_URL=database_app.config["DATABASE_URL"]))
    client = production_like.test_client()
    assert_problem(client.get(ME), 401, "missing_token")
    assert_problem(client.get(ME, headers=bearer("not.a.jwt")), 401, "invalid_token")
    assert_problem(client.get(ME, headers=bearer(user.tokens["refresh_token"])), 401, "invalid_token")
    assert client.get(ME, headers=user.headers).status_code == 200
    with production_like.app_context():
        db.engine.dispose()


def test_a_session_row_backs_every_login(client: FlaskClient, user: Account, app: Flask) -> None:
    with app.app_context():
        session = db.session.get_one(RefreshSession, uuid.UUID(claims(user.tokens["access_token"])["sid"]))
    assert str(session.user_id) == user.id and session.revoked_at is None
    assert session.current_jti == claims(user.tokens["refresh_token"])["jti"]
    assert session.expires_at > utcnow()


PUBLIC_ROUTES = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/login/mfa"),
    ("POST", "/api/v1/auth/password-reset"),
    ("POST", "/api/v1/auth/password-reset/confirm"),
    ("POST", "/api/v1/auth/verify-email"),
    ("GET", "/api/v1/health/live"),
    ("GET", "/api/v1/health/ready"),
    ("GET", "/api/v1/swagger.json"),
    ("GET", "/api/v1/openapi.json"),
}


def test_every_other_route_is_denied_without_a_token(app: Flask, client: FlaskClient) -> None:
    """Deny by default: enumerate the real route map, so a new route without @public fails here."""
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<[^>]+>", str(uuid.uuid4()), rule.rule)
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            if ("GET" if method == "HEAD" else method, rule.rule) in PUBLIC_ROUTES:
                continue
            response = client.open(path, method=method, json={})
            if method == "HEAD":  # GET's answer without its body: the same guard, no way around it
                assert response.status_code == 401
                continue
            # The refresh endpoint wants a refresh token; anything else wants an access token.
            assert_problem(response, 401, "missing_token")
            checked += 1
    assert checked >= 15
