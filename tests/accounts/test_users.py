"""Own profile, object-level access (BOLA), admin-only functions and list pagination."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.accounts.models import RefreshSession, User
from app.core.extensions import db
from tests.support.app import PASSWORD, Account, assert_problem, bearer, make_user

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
REFRESH = "/api/v1/auth/refresh"


def strip_request_id(response: Any) -> dict[str, Any]:
    return {k: v for k, v in response.get_json().items() if k != "request_id"}


# --- own profile ----------------------------------------------------------------------------


def test_me_shows_the_callers_profile(client: FlaskClient, user: Account) -> None:
    body = client.get(ME, headers=user.headers).get_json()
    assert body["id"] == user.id and body["email"] == user.email
    assert set(body) == {
        "id",
        "email",
        "display_name",
        "role",
        "is_active",
        "email_verified_at",
        "pending_email",
        "created_at",
        "updated_at",
    }


def test_patch_me_changes_the_name_and_asks_for_the_email(client: FlaskClient, user: Account) -> None:
    change = {"display_name": "Grace", "email": "Grace@Example.com", "current_password": PASSWORD}
    response = client.patch(ME, headers=user.headers, json=change)
    assert response.status_code == 200
    assert response.get_json()["display_name"] == "Grace"
    assert response.get_json()["pending_email"] == "grace@example.com"  # the new address confirms it first
    assert client.get(ME, headers=user.headers).get_json()["email"] == user.email


@pytest.mark.parametrize("field", ["role", "is_active", "password_hash", "id", "created_at"])
def test_patch_me_cannot_escalate(client: FlaskClient, user: Account, field: str, app: Flask) -> None:
    value = {"role": "admin", "is_active": False}.get(field, "x")
    body = assert_problem(client.patch(ME, headers=user.headers, json={field: value}), 422, "validation_failed")
    assert body["errors"] == {field: ["Unknown field."]}
    with app.app_context():
        stored = db.session.get_one(User, uuid.UUID(user.id))
        assert (stored.role, stored.is_active) == ("user", True)


def test_patch_me_to_a_taken_email_is_409_and_changes_nothing(client: FlaskClient, user: Account, app: Flask) -> None:
    other = make_user(app)
    change = {"email": other.email.upper(), "current_password": PASSWORD}
    body = assert_problem(client.patch(ME, headers=user.headers, json=change), 409)
    assert body["errors"] == {"email": ["Already taken."]}
    assert client.get(ME, headers=user.headers).get_json()["email"] == user.email


def test_delete_me_removes_the_account_and_its_sessions(client: FlaskClient, user: Account, app: Flask) -> None:
    assert client.delete(ME, headers=user.headers).status_code == 204
    assert_problem(client.get(ME, headers=user.headers), 401)
    with app.app_context():
        assert db.session.get(User, uuid.UUID(user.id)) is None
        assert db.session.scalar(select(func.count()).select_from(RefreshSession)) == 0


# --- object-level access: another user's id is 404, exactly like an unknown one ------------


def test_a_user_sees_themselves_by_id(client: FlaskClient, user: Account) -> None:
    assert client.get(f"{USERS}/{user.id}", headers=user.headers).get_json()["id"] == user.id


def test_another_users_id_is_indistinguishable_from_a_random_one(
    client: FlaskClient, make_account: Callable[..., Account]
) -> None:
    alice, bob = make_account(), make_account()
    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"headers": alice.headers}
        if method == "patch":
            kwargs["json"] = {"display_name": "pwned"}
        theirs = getattr(client, method)(f"{USERS}/{bob.id}", **kwargs)
        random = getattr(client, method)(f"{USERS}/{uuid.uuid4()}", **kwargs)
        assert_problem(theirs, 404, "not_found")
        assert strip_request_id(theirs) == strip_request_id(random)
    assert client.get(ME, headers=bob.headers).get_json()["display_name"] == "Test User"


def test_a_non_uuid_id_is_404(client: FlaskClient, admin: Account) -> None:
    assert_problem(client.get(f"{USERS}/1", headers=admin.headers), 404)


# --- admin-only functions ---------------------------------------------------------------------


def test_admin_routes_refuse_users_with_403_and_anonymous_with_401(client: FlaskClient, user: Account) -> None:
    assert_problem(client.get(USERS, headers=user.headers), 403, "forbidden")
    new = {"email": "x@example.com", "password": PASSWORD, "display_name": "X", "role": "admin"}
    assert_problem(client.post(USERS, headers=user.headers, json=new), 403, "forbidden")
    assert_problem(client.get(USERS), 401, "missing_token")
    assert_problem(client.post(USERS, json=new), 401, "missing_token")


def test_admin_creates_a_user_with_a_role(client: FlaskClient, admin: Account) -> None:
    new = {"email": "Boss@example.com", "password": PASSWORD, "display_name": "Boss", "role": "admin"}
    response = client.post(USERS, headers=admin.headers, json=new)
    assert response.status_code == 201
    assert response.get_json()["role"] == "admin" and response.get_json()["email"] == "boss@example.com"
    boss = Account(client, response.get_json()["id"], "boss@example.com", PASSWORD)
    boss.login()
    assert client.get(USERS, headers=boss.headers).status_code == 200
    assert_problem(client.post(USERS, headers=admin.headers, json=new), 409)
    assert_problem(client.post(USERS, headers=admin.headers, json={**new, "role": "root"}), 422)


def test_roles_are_read_from_the_database_on_each_request(client: FlaskClient, admin: Account, user: Account) -> None:
    assert client.patch(f"{USERS}/{user.id}", headers=admin.headers, json={"role": "admin"}).status_code == 200
    assert client.get(USERS, headers=user.headers).status_code == 200  # same token, new role
    assert client.patch(f"{USERS}/{user.id}", headers=admin.headers, json={"role": "user"}).status_code == 200
    assert_problem(client.get(USERS, headers=user.headers), 403)


def test_admin_disabling_a_user_cuts_their_tokens(client: FlaskClient, admin: Account, user: Account) -> None:
    response = client.patch(f"{USERS}/{user.id}", headers=admin.headers, json={"is_active": False})
    assert response.status_code == 200 and response.get_json()["is_active"] is False
    assert_problem(client.get(ME, headers=user.headers), 401)


def test_disabling_a_user_ends_their_sessions_for_good(client: FlaskClient, admin: Account, user: Account) -> None:
    """Re-enabling the account does not bring the tokens issued before it was disabled back to life."""
    url = f"{USERS}/{user.id}"
    assert client.patch(url, headers=admin.headers, json={"is_active": False}).status_code == 200
    assert client.patch(url, headers=admin.headers, json={"is_active": True}).status_code == 200
    assert_problem(client.get(ME, headers=user.headers), 401, "invalid_token")
    assert_problem(client.post(REFRESH, headers=bearer(user.tokens["refresh_token"])), 401, "invalid_token")
    assert client.get(f"{url}/sessions", headers=admin.headers).get_json()["items"] == []
    user.login()
    assert client.get(ME, headers=user.headers).status_code == 200


@pytest.mark.parametrize("change", [{"role": "user"}, {"is_active": False}])
def test_admin_cannot_demote_or_disable_themselves(client: FlaskClient, admin: Account, change: dict[str, Any]) -> None:
    assert_problem(client.patch(f"{USERS}/{admin.id}", headers=admin.headers, json=change), 403, "forbidden")
    assert client.get(USERS, headers=admin.headers).status_code == 200


@pytest.mark.parametrize("path", [ME, "{users}/{id}"])
def test_the_last_admin_cannot_delete_themselves(client: FlaskClient, app: Flask, admin: Account, path: str) -> None:
    make_user(app, role="admin", is_active=False)  # a disabled admin administers nothing
    body = assert_problem(
        client.delete(path.format(users=USERS, id=admin.id), headers=admin.headers), 409, "last_admin"
    )
    assert "admin" in body["detail"]
    assert client.get(USERS, headers=admin.headers).status_code == 200


def test_an_admin_goes_once_another_remains(
    client: FlaskClient, make_account: Callable[..., Account], admin: Account
) -> None:
    other = make_account(role="admin")
    assert client.patch(f"{USERS}/{other.id}", headers=admin.headers, json={"role": "user"}).status_code == 200
    assert_problem(client.delete(ME, headers=admin.headers), 409, "last_admin")
    assert client.patch(f"{USERS}/{other.id}", headers=admin.headers, json={"role": "admin"}).status_code == 200
    assert client.delete(ME, headers=admin.headers).status_code == 204
    assert_problem(client.delete(ME, headers=other.headers), 409, "last_admin")


def test_a_user_cannot_change_their_own_role_by_id(client: FlaskClient, user: Account) -> None:
    response = client.patch(f"{USERS}/{user.id}", headers=user.headers, json={"role": "admin"})
    assert_problem(response, 403, "forbidden")
    assert client.get(ME, headers=user.headers).get_json()["role"] == "user"


def test_admin_deletes_a_user(client: FlaskClient, admin: Account, user: Account) -> None:
    assert client.delete(f"{USERS}/{user.id}", headers=admin.headers).status_code == 204
    assert_problem(client.get(f"{USERS}/{user.id}", headers=admin.headers), 404)
    assert_problem(client.get(ME, headers=user.headers), 401)


# --- listing: filters, sort allowlist, cursor pagination --------------------------------------


@pytest.fixture
def seven_users(app: Flask, admin: Account) -> list[User]:
    names = ["Ann", "bob", "Cy", "Dee", "Eve", "Fay", "Gus%"]
    return [
        make_user(
            app,
            email=f"{n.strip('%').lower()}@example.org",
            display_name=n,
            role="admin" if n == "Cy" else "user",
            is_active=n != "Dee",
        )
        for n in names
    ]


def walk(client: FlaskClient, admin: Account, query: str) -> list[dict[str, Any]]:
    """Follow the Link headers from the first page to the last."""
    items, url, pages = [], f"{USERS}?{query}", 0
    while url:
        response = client.get(url, headers=admin.headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["items"]
        link = response.headers.get("Link")
        assert (link is None) == (body["next_cursor"] is None)
        url = link.split(";")[0].strip("<>").replace("http://localhost", "") if link else ""
        pages += 1
        assert pages < 20
    return items


def test_pages_cover_every_user_once_in_order(client: FlaskClient, admin: Account, seven_users: list[User]) -> None:
    items = walk(client, admin, "limit=3")
    assert len(items) == 8 and len({i["id"] for i in items}) == 8
    assert [i["created_at"] for i in items] == sorted(i["created_at"] for i in items)


@pytest.mark.parametrize("sort", ["email", "created_at"])
@pytest.mark.parametrize("order", ["asc", "desc", None])
def test_sorting_is_by_an_allowlisted_key(
    client: FlaskClient, admin: Account, seven_users: list[User], sort: str, order: str | None
) -> None:
    values = [i[sort] for i in walk(client, admin, f"limit=2&sort={sort}" + (f"&order={order}" if order else ""))]
    assert values == sorted(values, reverse=order == "desc")  # ascending unless asked


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("email=EVE", ["Eve"]),
        ("name=y", ["Cy", "Fay"]),
        ("name=FA", ["Fay"]),  # case-insensitive: ILIKE on Postgres, lower() LIKE lower() on SQLite
        ("role=admin", ["Admin", "Cy"]),
        ("is_active=false", ["Dee"]),
        ("name=%25", ["Gus%"]),  # a literal %, not a LIKE wildcard
        ("name=_", []),
        ("email=example.org&is_active=true&sort=email&order=desc", ["Gus%", "Fay", "Eve", "Cy", "bob", "Ann"]),
    ],
)
def test_filters(client: FlaskClient, admin: Account, seven_users: list[User], query: str, expected: list[str]) -> None:
    names = [i["display_name"] for i in walk(client, admin, query)]
    assert sorted(names) == sorted(expected) if "sort" not in query else names == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("sort=password_hash", "sort"),
        ("sort=-email", "sort"),
        ("order=up", "order"),
        ("cursor=garbage", "cursor"),
        ("role=root", "role"),
        ("bogus=1", "bogus"),
    ],
)
def test_bad_list_queries_are_422(client: FlaskClient, admin: Account, query: str, field: str) -> None:
    assert list(assert_problem(client.get(f"{USERS}?{query}", headers=admin.headers), 422)["errors"]) == [field]


def test_a_cursor_only_works_with_its_own_sort(client: FlaskClient, admin: Account, seven_users: list[User]) -> None:
    cursor = client.get(f"{USERS}?limit=2&sort=email", headers=admin.headers).get_json()["next_cursor"]
    assert_problem(client.get(f"{USERS}?sort=created_at&cursor={cursor}", headers=admin.headers), 422)
    assert_problem(client.get(f"{USERS}?sort=email&order=desc&cursor={cursor}", headers=admin.headers), 422)
