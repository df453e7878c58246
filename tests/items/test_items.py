"""The worked example: items belong to their owner; others get 404, admins see everything."""

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from tests.support.app import Account, assert_problem

ITEMS = "/api/v1/items"


def create(client: FlaskClient, account: Account, **values: Any) -> dict[str, Any]:
    response = client.post(ITEMS, json={"name": "Buy milk", **values}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    item: dict[str, Any] = response.get_json()
    assert response.headers["Location"].endswith(f"{ITEMS}/{item['id']}")
    assert response.headers["ETag"]
    return item


def test_create_then_read_your_item(client: FlaskClient, user: Account) -> None:
    item = create(client, user, notes="two litres")
    assert item["owner_id"] == user.id and item["done"] is False and item["notes"] == "two litres"
    response = client.get(f"{ITEMS}/{item['id']}", headers=user.headers)
    assert response.status_code == 200 and response.get_json() == item


def test_another_users_item_is_not_found(client: FlaskClient, make_account: Callable[..., Account]) -> None:
    owner, stranger = make_account(), make_account()
    item = create(client, owner)
    url = f"{ITEMS}/{item['id']}"
    assert_problem(client.get(url, headers=stranger.headers), 404, "not_found")
    assert_problem(client.patch(url, json={"done": True}, headers=stranger.headers), 404, "not_found")
    assert_problem(client.delete(url, headers=stranger.headers), 404, "not_found")
    assert client.get(ITEMS, headers=stranger.headers).get_json()["items"] == []
    assert client.get(url, headers=owner.headers).get_json()["done"] is False  # untouched


def test_an_admin_sees_and_changes_everyones_items(client: FlaskClient, user: Account, admin: Account) -> None:
    item = create(client, user)
    listed = client.get(ITEMS, headers=admin.headers).get_json()["items"]
    assert [i["id"] for i in listed] == [item["id"]]
    response = client.patch(f"{ITEMS}/{item['id']}", json={"done": True}, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["done"] is True


def test_list_is_newest_first_in_keyset_pages_with_a_filter(client: FlaskClient, user: Account) -> None:
    made = [create(client, user, name=f"item {n}", done=n % 2 == 0) for n in range(5)]
    first = client.get(f"{ITEMS}?limit=2", headers=user.headers)
    page = first.get_json()
    assert [i["name"] for i in page["items"]] == ["item 4", "item 3"]
    assert 'rel="next"' in first.headers["Link"]
    second = client.get(f"{ITEMS}?limit=2&cursor={page['next_cursor']}", headers=user.headers).get_json()
    assert [i["name"] for i in second["items"]] == ["item 2", "item 1"]
    done = client.get(f"{ITEMS}?done=true", headers=user.headers).get_json()
    assert {i["id"] for i in done["items"]} == {m["id"] for m in made if m["done"]}
    assert_problem(client.get(f"{ITEMS}?cursor=nonsense", headers=user.headers), 422, "validation_failed")


def test_patch_with_a_stale_etag_is_refused(client: FlaskClient, user: Account) -> None:
    item = create(client, user)
    url = f"{ITEMS}/{item['id']}"
    etag = client.get(url, headers=user.headers).headers["ETag"]
    changed = client.patch(url, json={"name": "Buy oat milk"}, headers={**user.headers, "If-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    stale = client.patch(url, json={"done": True}, headers={**user.headers, "If-Match": etag})
    assert_problem(stale, 412, "precondition_failed")
    assert client.get(url, headers=user.headers).get_json() == changed.get_json()


def test_bad_input_is_a_clear_422(client: FlaskClient, user: Account) -> None:
    body = assert_problem(client.post(ITEMS, json={"name": ""}, headers=user.headers), 422, "validation_failed")
    assert "name" in body["errors"]
    body = assert_problem(client.post(ITEMS, json={"name": "x", "owner_id": user.id}, headers=user.headers), 422)
    assert "owner_id" in body["errors"]  # the owner is the caller, never what the body says


def test_delete_then_gone(client: FlaskClient, user: Account) -> None:
    item = create(client, user)
    url = f"{ITEMS}/{item['id']}"
    deleted = client.delete(url, headers=user.headers)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert_problem(client.get(url, headers=user.headers), 404, "not_found")


def test_items_need_a_token(client: FlaskClient) -> None:
    assert_problem(client.get(ITEMS), 401, "missing_token")
