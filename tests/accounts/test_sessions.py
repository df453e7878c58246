"""Login sessions: list your own, end one or all; admins do the same for anyone, others get 404."""

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from app.accounts.models import RefreshSession
from app.core.database import utcnow
from app.core.extensions import db
from tests.support.app import Account, assert_problem, bearer, sid

MY_SESSIONS = "/api/v1/users/me/sessions"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"


def log_in_again(client: FlaskClient, account: Account, user_agent: str) -> dict[str, Any]:
    body = {"email": account.email, "password": account.password}
    response = client.post(LOGIN, json=body, headers={"User-Agent": user_agent})
    assert response.status_code == 200
    tokens: dict[str, Any] = response.get_json()
    return tokens


def works(client: FlaskClient, tokens: dict[str, Any]) -> bool:
    return client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200


def test_you_see_your_live_sessions_and_which_one_is_yours(client: FlaskClient, user: Account) -> None:
    phone = log_in_again(client, user, "Phone/1.0")
    response = client.get(MY_SESSIONS, headers=bearer(phone["access_token"]))
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [item["id"] for item in items] == [sid(phone), sid(user.tokens)]  # most recently used first
    assert [item["current"] for item in items] == [True, False]
    assert items[0]["user_agent"] == "Phone/1.0" and items[0]["ip"] == "127.0.0.1"
    assert set(items[0]) == {"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"}


def test_ended_expired_and_idle_sessions_are_not_listed(client: FlaskClient, app: Flask, user: Account) -> None:
    ended, expired, idle = (log_in_again(client, user, agent) for agent in "abc")
    assert client.post("/api/v1/auth/logout", headers=bearer(ended["access_token"])).status_code == 204
    unused = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"], seconds=1)
    with app.app_context():
        db.session.execute(
            update(RefreshSession)
            .where(RefreshSession.id == uuid.UUID(sid(expired)))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.execute(
            update(RefreshSession)
            .where(RefreshSession.id == uuid.UUID(sid(idle)))
            .values(last_used_at=utcnow() - unused)
        )
        db.session.commit()
    items = client.get(MY_SESSIONS, headers=user.headers).get_json()["items"]
    assert [item["id"] for item in items] == [sid(user.tokens)]


def test_ending_one_session_stops_its_tokens_only(client: FlaskClient, user: Account) -> None:
    laptop = log_in_again(client, user, "Laptop/1.0")
    response = client.delete(f"{MY_SESSIONS}/{sid(laptop)}", headers=user.headers)
    assert response.status_code == 204
    assert not works(client, laptop)
    assert_problem(client.post(REFRESH, headers=bearer(laptop["refresh_token"])), 401)
    assert works(client, user.tokens)
    assert [i["id"] for i in client.get(MY_SESSIONS, headers=user.headers).get_json()["items"]] == [sid(user.tokens)]


def test_ending_an_unknown_or_ended_session_is_404(client: FlaskClient, user: Account) -> None:
    other = log_in_again(client, user, "x")
    assert client.delete(f"{MY_SESSIONS}/{sid(other)}", headers=user.headers).status_code == 204
    assert_problem(client.delete(f"{MY_SESSIONS}/{sid(other)}", headers=user.headers), 404, "not_found")
    assert_problem(client.delete(f"{MY_SESSIONS}/{uuid.uuid4()}", headers=user.headers), 404, "not_found")


def test_someone_elses_session_is_404_and_keeps_working(
    client: FlaskClient, make_account: Callable[..., Account]
) -> None:
    alice, bob = make_account(), make_account()
    assert_problem(client.delete(f"{MY_SESSIONS}/{sid(bob.tokens)}", headers=alice.headers), 404, "not_found")
    url = f"/api/v1/users/{bob.id}/sessions"
    assert_problem(client.get(url, headers=alice.headers), 404, "not_found")
    assert_problem(client.delete(f"{url}/{sid(bob.tokens)}", headers=alice.headers), 404, "not_found")
    assert works(client, bob.tokens)


def test_you_can_use_your_own_id_too(client: FlaskClient, user: Account) -> None:
    url = f"/api/v1/users/{user.id}/sessions"
    assert [i["id"] for i in client.get(url, headers=user.headers).get_json()["items"]] == [sid(user.tokens)]


def test_logout_all_ends_every_session(client: FlaskClient, user: Account) -> None:
    other = log_in_again(client, user, "Tablet/1.0")
    response = client.post("/api/v1/auth/logout-all", headers=user.headers)
    assert response.status_code == 204
    for tokens in (user.tokens, other):
        assert not works(client, tokens)
        assert_problem(client.post(REFRESH, headers=bearer(tokens["refresh_token"])), 401)
    assert user.login()  # a fresh login still works


def test_an_admin_lists_and_ends_anyones_sessions(client: FlaskClient, admin: Account, user: Account) -> None:
    url = f"/api/v1/users/{user.id}/sessions"
    items = client.get(url, headers=admin.headers).get_json()["items"]
    assert [(i["id"], i["current"]) for i in items] == [(sid(user.tokens), False)]
    assert client.delete(f"{url}/{sid(user.tokens)}", headers=admin.headers).status_code == 204
    assert not works(client, user.tokens)
    assert client.get(url, headers=admin.headers).get_json()["items"] == []
    assert_problem(client.delete(f"{url}/{sid(admin.tokens)}", headers=admin.headers), 404)  # not this user's


def test_sessions_need_a_login(client: FlaskClient) -> None:
    assert_problem(client.get(MY_SESSIONS), 401)
    assert_problem(client.post("/api/v1/auth/logout-all"), 401)
