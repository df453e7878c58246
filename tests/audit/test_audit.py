"""The audit trail: each security-relevant change leaves one event, in its own transaction; admins read it."""

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.app import PASSWORD, Account, assert_problem, bearer, mailed_token

AUDIT = "/api/v1/audit-events"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"


def events(client: FlaskClient, admin: Account, **filters: Any) -> list[dict[str, Any]]:
    response = client.get(AUDIT, headers=admin.headers, query_string={"limit": 100, **filters})
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def actions(client: FlaskClient, admin: Account, target: Account) -> list[str]:
    """The actions done to a user, oldest first."""
    return [e["action"] for e in reversed(events(client, admin, target_id=target.id))]


def test_register_and_login_are_recorded_with_ip_and_request_id(client: FlaskClient, admin: Account) -> None:
    body = {"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"}
    user_id = client.post("/api/v1/auth/register", json=body, headers={"X-Request-ID": "req-42"}).get_json()["id"]
    login = client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})

    logged_in, registered = events(client, admin, target_id=user_id)
    assert registered["action"] == "user.registered"
    assert (registered["actor_id"], registered["ip"], registered["request_id"]) == (None, "127.0.0.1", "req-42")
    assert logged_in["action"] == "login.succeeded" and logged_in["actor_id"] == user_id
    assert logged_in["request_id"] == login.headers["X-Request-ID"]
    assert set(logged_in) == {"id", "created_at", "action", "actor_id", "target_id", "ip", "request_id", "details"}


def test_failed_logins_are_recorded_although_the_request_fails(
    client: FlaskClient, admin: Account, user: Account
) -> None:
    assert_problem(client.post(LOGIN, json={"email": user.email, "password": "wrong " * 4}), 401)
    assert_problem(client.post(LOGIN, json={"email": "nobody@example.com", "password": "wrong " * 4}), 401)
    unknown, known = events(client, admin, action="login.failed")
    assert known["target_id"] == user.id and known["details"] == {"email": user.email, "reason": "invalid_credentials"}
    assert unknown["target_id"] is None and unknown["details"]["email"] == "nobody@example.com"


def test_refresh_token_reuse_is_recorded(client: FlaskClient, admin: Account, user: Account) -> None:
    spent = user.tokens["refresh_token"]
    rotated = client.post("/api/v1/auth/refresh", headers=bearer(spent))
    # Rotated twice: a replay however soon after (the token just rotated would be within its grace window).
    assert client.post("/api/v1/auth/refresh", headers=bearer(rotated.get_json()["refresh_token"])).status_code == 200
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(spent)), 401, "refresh_token_reused")
    [event] = events(client, admin, action="refresh_token.reused")
    assert event["target_id"] == user.id and event["actor_id"] is None


def test_password_change_reset_and_verification_are_recorded(
    client: FlaskClient, admin: Account, user: Account, outbox: list[EmailMessage]
) -> None:
    change = {"current_password": PASSWORD, "new_password": "a second long passphrase here"}
    assert client.post(f"{ME}/password", headers=user.headers, json=change).status_code == 204
    assert client.post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    confirm = {"token": mailed_token(outbox[-1]), "new_password": "a third long passphrase here"}
    assert client.post("/api/v1/auth/password-reset/confirm", json=confirm).status_code == 204
    user.password = confirm["new_password"]
    user.login()
    outbox.clear()
    change = {"email": "new@example.com", "current_password": user.password}
    assert client.patch(ME, headers=user.headers, json=change).status_code == 200
    assert client.post("/api/v1/auth/verify-email", json={"token": mailed_token(outbox[0])}).status_code == 204

    assert actions(client, admin, user)[1:] == [  # after the fixture's login
        "password.changed",
        "password.reset_requested",
        "password.reset",
        "login.succeeded",
        "user.email_change_requested",
        "user.email_changed",
    ]
    for action in ("user.email_change_requested", "user.email_changed"):
        [event] = events(client, admin, action=action)
        assert event["details"] == {"from": user.email, "to": "new@example.com"} and event["actor_id"] == user.id


def test_an_unknown_address_asking_for_a_reset_is_recorded_too(client: FlaskClient, admin: Account) -> None:
    assert client.post("/api/v1/auth/password-reset", json={"email": "nobody@example.com"}).status_code == 202
    [event] = events(client, admin, action="password.reset_requested")
    assert event["target_id"] is None and event["details"] == {"email": "nobody@example.com"}


def test_admin_changes_and_deletion_are_recorded(client: FlaskClient, admin: Account, user: Account) -> None:
    url = f"/api/v1/users/{user.id}"
    assert client.patch(url, headers=admin.headers, json={"role": "admin", "is_active": False}).status_code == 200
    assert client.delete(url, headers=admin.headers).status_code == 204

    by_action = {e["action"]: e for e in events(client, admin, actor_id=admin.id)}
    assert by_action["user.role_changed"]["details"] == {"from": "user", "to": "admin"}
    assert by_action["user.activation_changed"]["details"] == {"from": True, "to": False}
    assert by_action["user.deleted"]["target_id"] == user.id
    # The trail outlives the account: its first events are still there.
    assert actions(client, admin, user)[0] == "login.succeeded"


def test_session_revocations_are_recorded(client: FlaskClient, admin: Account, user: Account) -> None:
    sid = client.get(f"{ME}/sessions", headers=user.headers).get_json()["items"][0]["id"]
    assert client.delete(f"/api/v1/users/{user.id}/sessions/{sid}", headers=admin.headers).status_code == 204
    user.login()
    assert client.post("/api/v1/auth/logout-all", headers=user.headers).status_code == 204

    revoked, all_revoked = events(client, admin, action="session.revoked"), events(client, admin, target_id=user.id)
    assert [(e["actor_id"], e["target_id"], e["details"]) for e in revoked] == [
        (admin.id, user.id, {"session_id": sid})
    ]
    assert all_revoked[0]["action"] == "sessions.revoked_all" and all_revoked[0]["actor_id"] == user.id


def test_a_change_that_fails_leaves_no_event(
    client: FlaskClient, admin: Account, make_account: Callable[..., Account]
) -> None:
    alice, bob = make_account(), make_account()
    assert_problem(
        client.patch(ME, headers=alice.headers, json={"email": bob.email, "current_password": PASSWORD}), 409
    )
    stale = {"If-Match": '"999"', **admin.headers}
    assert_problem(client.patch(f"/api/v1/users/{bob.id}", headers=stale, json={"role": "admin"}), 412)
    assert events(client, admin, action="user.email_change_requested") == []
    assert events(client, admin, action="user.role_changed") == []


def test_the_list_pages_newest_first_with_a_cursor(
    client: FlaskClient, admin: Account, make_account: Callable[..., Account]
) -> None:
    user = make_account()
    for _ in range(4):
        client.post(LOGIN, json={"email": user.email, "password": "wrong " * 4})
    seen, url, query = [], AUDIT, {"target_id": user.id, "limit": 2}
    while True:
        response = client.get(url, headers=admin.headers, query_string=query)
        page = response.get_json()
        seen += page["items"]
        if not page["next_cursor"]:
            assert "Link" not in response.headers
            break
        assert response.headers["Link"].endswith('>; rel="next"') and len(page["items"]) == 2
        query = {**query, "cursor": page["next_cursor"]}
    assert [e["action"] for e in seen] == ["login.failed"] * 4 + ["login.succeeded"]
    assert [e["created_at"] for e in seen] == sorted((e["created_at"] for e in seen), reverse=True)
    assert len({e["id"] for e in seen}) == 5


@pytest.mark.parametrize("query", [{"cursor": "bm9wZQ"}, {"action": "made.up"}, {"actor_id": "x"}, {"limit": 0}])
def test_bad_filters_are_422(client: FlaskClient, admin: Account, query: dict[str, Any]) -> None:
    assert_problem(client.get(AUDIT, headers=admin.headers, query_string=query), 422, "validation_failed")


def test_only_admins_read_the_trail(client: FlaskClient, user: Account) -> None:
    assert_problem(client.get(AUDIT, headers=user.headers), 403, "forbidden")
    assert_problem(client.get(AUDIT), 401)
