"""Strong ETags from a version column; If-Match on PATCH prevents lost updates."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.accounts.models import User
from app.core.extensions import db
from tests.support.app import Account, assert_problem, settings


def test_reads_and_writes_carry_a_strong_etag(client: FlaskClient, user: Account) -> None:
    read = client.get("/api/v1/users/me", headers=user.headers)
    by_id = client.get(f"/api/v1/users/{user.id}", headers=user.headers)
    assert read.headers["ETag"] == by_id.headers["ETag"] == '"1"'
    written = client.patch("/api/v1/users/me", headers={**user.headers, "If-Match": '"1"'}, json={"display_name": "B"})
    assert written.status_code == 200 and written.headers["ETag"] == '"2"'


def test_a_stale_if_match_is_412_and_changes_nothing(client: FlaskClient, user: Account) -> None:
    client.patch("/api/v1/users/me", headers=user.headers, json={"display_name": "First"})
    stale = client.patch("/api/v1/users/me", headers={**user.headers, "If-Match": '"1"'}, json={"display_name": "Lost"})
    assert_problem(stale, 412, "precondition_failed")
    weak = client.patch("/api/v1/users/me", headers={**user.headers, "If-Match": 'W/"2"'}, json={"display_name": "W"})
    assert_problem(weak, 412)  # If-Match compares strongly
    assert client.get("/api/v1/users/me", headers=user.headers).get_json()["display_name"] == "First"
    star = client.patch("/api/v1/users/me", headers={**user.headers, "If-Match": "*"}, json={"display_name": "Any"})
    assert star.status_code == 200


def test_if_match_can_be_required(database_app: Flask, user: Account) -> None:
    strict = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], REQUIRE_IF_MATCH=True))
    client = strict.test_client()
    blind = client.patch(f"/api/v1/users/{user.id}", headers=user.headers, json={"display_name": "X"})
    assert_problem(blind, 428, "precondition_required")
    etag = client.get("/api/v1/users/me", headers=user.headers).headers["ETag"]
    ok = client.patch(
        f"/api/v1/users/{user.id}", headers={**user.headers, "If-Match": etag}, json={"display_name": "X"}
    )
    assert ok.status_code == 200


def test_two_concurrent_patches_with_one_etag_give_one_200_and_one_412(app: Flask, user: Account) -> None:
    etag = app.test_client().get("/api/v1/users/me", headers=user.headers).headers["ETag"]
    barrier = threading.Barrier(2)

    def patch(name: str) -> int:
        client = app.test_client()
        barrier.wait()
        headers = {**user.headers, "If-Match": etag}
        return client.patch("/api/v1/users/me", headers=headers, json={"display_name": name}).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(patch, ["Alpha", "Beta"]))
    assert statuses == [200, 412]
    with app.app_context():
        stored = db.session.get_one(User, uuid.UUID(user.id))
        assert stored.version == 2 and stored.display_name in {"Alpha", "Beta"}
