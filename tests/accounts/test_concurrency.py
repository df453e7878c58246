"""Racing writers: the database decides, and losers get a clean answer."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app.accounts.models import User
from app.core.extensions import db
from tests.support.app import PASSWORD, Account, bearer, mailed_token

ROUNDS = 8  # each race, this many times: one round alone would often pass by luck


def test_concurrent_duplicate_registrations_give_one_201_and_409s(app: Flask) -> None:
    variants = ["race@example.com", "RACE@example.com", "race@EXAMPLE.COM", " Race@Example.Com"]
    barrier = threading.Barrier(20)

    def register(i: int) -> tuple[int, str]:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1/auth/register", json={"email": variants[i % 4], "password": PASSWORD, "display_name": f"R{i}"}
        )
        return response.status_code, response.mimetype

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(register, range(20)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 19, results
    assert all(mimetype == "application/problem+json" for status, mimetype in results if status == 409)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1


# Two admins, each removing the other (or themselves) at the same moment: without a lock, each sees the
# other still there and both go. What each does to whom, as (method, path for `other`, body).
REMOVALS = {
    "demote": ("patch", "/api/v1/users/{other}", {"role": "user"}),
    "disable": ("patch", "/api/v1/users/{other}", {"is_active": False}),
    "delete": ("delete", "/api/v1/users/{other}", None),
    "delete themselves": ("delete", "/api/v1/users/me", None),
}
# The one refused gets 409 last_admin, or 401, 403 or 404 when the other had removed it before it was looked up.
REFUSED = [(409, "last_admin"), (404, "not_found"), (403, "forbidden"), (401, "invalid_token")]


def at_once(app: Flask, calls: list[Callable[[FlaskClient], Any]]) -> list[Any]:
    """Make the calls from threads of their own, released together; what each returned."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[FlaskClient], Any]) -> Any:
        client = app.test_client()
        barrier.wait()
        return call(client)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def removal(removal: str, me: Account, other: Account) -> Callable[[FlaskClient], tuple[int, str | None]]:
    method, path, body = REMOVALS[removal]

    def call(client: FlaskClient) -> tuple[int, str | None]:
        response = getattr(client, method)(path.format(other=other.id), headers=me.headers, json=body)
        return response.status_code, (response.get_json(silent=True) or {}).get("code")

    return call


@pytest.mark.parametrize("kind", REMOVALS)
def test_two_admins_removing_each_other_at_once_leave_one(
    app: Flask, make_account: Callable[..., Account], kind: str
) -> None:
    rounds = []
    for _ in range(ROUNDS):
        with app.app_context():  # the two of this round are the only active admins
            db.session.execute(update(User).where(User.role == "admin").values(role="user"))
            db.session.commit()
        a, b = make_account(role="admin"), make_account(role="admin")
        statuses = sorted(at_once(app, [removal(kind, a, b), removal(kind, b, a)]))
        with app.app_context():
            admins = db.session.scalar(select(func.count()).where(User.role == "admin", User.is_active))
        rounds.append((statuses, admins))
    assert [admins for _, admins in rounds] == [1] * ROUNDS, rounds
    assert all(statuses[0][0] in (200, 204) and statuses[1] in REFUSED for statuses, _ in rounds), rounds


# Logins with the old password racing a change of it: whatever the interleaving, once the change is
# done no session they made may work (the one that made a password change goes on, by design).
LOGINS = 6
NEW_PASSWORD = "a brand new and rather long passphrase"


def old_password_login(account: Account) -> Callable[[FlaskClient], dict[str, Any] | None]:
    def call(client: FlaskClient) -> dict[str, Any] | None:
        response = client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        return response.get_json() if response.status_code == 200 else None

    return call


def password_change(kind: str, account: Account, outbox: list[EmailMessage]) -> Callable[[FlaskClient], int]:
    if kind == "reset":
        client = account.client
        assert client.post("/api/v1/auth/password-reset", json={"email": account.email}).status_code == 202
        body = {"token": mailed_token(outbox[-1]), "new_password": NEW_PASSWORD}
        return lambda client: client.post("/api/v1/auth/password-reset/confirm", json=body).status_code
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    return lambda client: client.post("/api/v1/users/me/password", json=body, headers=account.headers).status_code


@pytest.mark.parametrize("kind", ["reset", "change"])
def test_no_session_made_with_the_old_password_outlives_a_change_racing_it(
    app: Flask, make_account: Callable[..., Account], outbox: list[EmailMessage], kind: str
) -> None:
    rounds = []
    for _ in range(ROUNDS):
        account = make_account()
        change = password_change(kind, account, outbox)
        *logins, changed = at_once(app, [old_password_login(account)] * LOGINS + [change])
        assert changed == 204
        client = app.test_client()
        made = [tokens for tokens in logins if tokens]
        working = [
            tokens
            for tokens in made
            if client.get("/api/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 200
            or client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 200
        ]
        rounds.append((len(made), len(working)))
    assert [working for _, working in rounds] == [0] * ROUNDS, rounds  # (logins that got in, still working)
    assert sum(made for made, _ in rounds) > 0, rounds  # the old password did get logins in: they raced
