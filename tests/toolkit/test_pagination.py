"""Cursors are opaque to callers but not trusted: a crafted one is decoded into typed values or refused."""

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.app import Account, assert_problem

# Each list, and the sort its cursors carry: the sort column is a timestamp or a string.
LISTS = [
    ("/api/v1/users", "created_at"),
    ("/api/v1/users?sort=created_at&order=desc", "-created_at"),
    ("/api/v1/users?sort=email", "email"),
    ("/api/v1/users?sort=email&order=desc", "-email"),
    ("/api/v1/audit-events", "-created_at"),
]  # not the items example: a fork may delete it, and it pages with the same code (tests/items checks a bad cursor)
GOOD = {"created_at": "2030-01-01T00:00:00+00:00", "email": "m@example.com"}
NOT_A_STRING = [["2030-01-01"], {"a": 1}, 10**30, -(10**30), 7, 1.5, float("nan"), True, None]
BAD_VALUES = {
    "created_at": [*NOT_A_STRING, "2030-01-01T00:00:00", "9999-12-31T23:59:59-12:00", "yesterday", "\ud800"],
    "email": [*NOT_A_STRING, "a\x00b", "\ud800"],
}
BAD_IDS = ["not-a-uuid", 5, ["x"], {"id": 1}, None, ""]
ROW_ID = "4f2a6c1e-8d3b-4e7a-9c5f-0b1d2e3f4a5b"


def encoded(payload: Any) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def crafted(sort: str) -> list[Any]:
    """Cursors that are valid base64 JSON of the wrong shape or types for this sort."""
    column, row_id = sort.lstrip("-"), ROW_ID
    payloads: list[Any] = [[sort, value, row_id] for value in BAD_VALUES[column]]
    payloads += [[sort, GOOD[column], bad] for bad in BAD_IDS]
    payloads += [{"sort": sort}, "abc", [sort, GOOD[column]], [sort, GOOD[column], row_id, 1], None, 12]
    return payloads


CASES = [(url, payload) for url, sort in LISTS for payload in crafted(sort)]


@pytest.mark.parametrize(("url", "payload"), CASES, ids=[f"{url} {payload!r}"[:90] for url, payload in CASES])
def test_a_crafted_cursor_is_422_never_a_query(client: FlaskClient, admin: Account, url: str, payload: Any) -> None:
    separator = "&" if "?" in url else "?"
    response = client.get(f"{url}{separator}cursor={encoded(payload)}", headers=admin.headers)
    assert list(assert_problem(response, 422, "validation_failed")["errors"]) == ["cursor"]


@pytest.mark.parametrize(("url", "sort"), LISTS)
def test_a_well_formed_cursor_of_the_right_types_pages_on(
    client: FlaskClient, admin: Account, url: str, sort: str
) -> None:
    separator = "&" if "?" in url else "?"
    cursor = encoded([sort, GOOD[sort.lstrip("-")], ROW_ID])
    assert client.get(f"{url}{separator}cursor={cursor}", headers=admin.headers).status_code == 200
