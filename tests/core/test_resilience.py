"""A database that is down, slow or saturated costs a request a bounded wait and a 503 problem+json with
Retry-After, never a 500 or a hang (in-process; Redis: tests/system/test_redis_readiness.py; the loopback
stack: tests/system/test_faults.py)."""

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

from app import create_app
from app.core.extensions import db
from app.toolkit.markers import public
from tests.support.app import PASSWORD, assert_problem, make_user, settings, timed
from tests.support.live import migrated_app


@contextmanager
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers: a database host that has hung."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_postgres_sessions_get_the_configured_timeouts(new_database: Callable[[str], str]) -> None:
    app = create_app(settings(DATABASE_URL=new_database("postgres"), DB_STATEMENT_TIMEOUT=2.5, DB_LOCK_TIMEOUT=1))
    with app.app_context():
        with db.engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "2500ms"
            assert connection.execute(text("SHOW lock_timeout")).scalar() == "1s"
        pool = db.engine.pool
        assert (pool.size(), pool.timeout()) == (5, 5)
        db.engine.dispose()


def test_a_database_that_never_answers_costs_the_connect_timeout_then_503() -> None:
    with black_hole() as port:
        url = f"postgresql://nobody@127.0.0.1:{port}/none"
        client = create_app(settings(DATABASE_URL=url, DB_CONNECT_TIMEOUT=2)).test_client()
        assert timed(lambda: assert_problem(client.get("/api/v1/health/ready"), 503, "database_unavailable")) < 3.5
        login = {"email": "a@example.com", "password": PASSWORD}
        seconds = timed(
            lambda: assert_problem(client.post("/api/v1/auth/login", json=login), 503, "database_unavailable")
        )
        assert seconds < 3.5
        assert client.get("/api/v1/health/live").status_code == 200


# Reads have their own pool (config.py): a GET uses only that one, a write both.
@pytest.mark.parametrize(("bind", "method"), [("reads", "GET"), (None, "PATCH")])
def test_a_saturated_pool_answers_503_within_the_pool_timeout(
    new_database: Callable[[str], str], bind: str | None, method: str
) -> None:
    with migrated_app(new_database("postgres"), DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT=1) as app:
        user = make_user(app)
        client = app.test_client()
        token = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).get_json()
        with app.app_context(), db.engines[bind].connect():  # the pool's only connection, held
            response = None

            def call() -> None:
                nonlocal response
                headers = {"Authorization": f"Bearer {token['access_token']}"}
                change = {"display_name": "X"} if method == "PATCH" else None
                response = client.open("/api/v1/users/me", method=method, json=change, headers=headers)

            assert timed(call) < 2.5
        body = assert_problem(response, 503, "database_busy")
        assert "in use" in body["detail"]
        assert response is not None and response.headers["Retry-After"]


def test_reads_are_served_while_writes_hold_every_transaction(new_database: Callable[[str], str]) -> None:
    """GET requests read in autocommit on the reads pool, so a transaction pool saturated by writes
    (here: its only connection held) blocks no read; the write still gets its 503."""
    with migrated_app(new_database("postgres"), DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT=1) as app:
        admin = make_user(app, role="admin")
        client = app.test_client()
        login = client.post("/api/v1/auth/login", json={"email": admin.email, "password": PASSWORD}).get_json()
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        reads = ["/api/v1/users", f"/api/v1/users/{admin.id}", "/api/v1/users/me/sessions", "/api/v1/audit-events"]
        with app.app_context(), db.engine.connect():  # the transaction pool's only connection, held
            for path in reads:
                response = client.get(path, headers=headers)
                assert response.status_code == 200, (path, response.get_json())
            assert client.get("/api/v1/users", headers=headers).get_json()["items"][0]["email"] == admin.email
            write = client.patch("/api/v1/users/me", json={"display_name": "X"}, headers=headers)
            assert_problem(write, 503, "database_busy")


def test_a_locked_sqlite_database_is_503_after_the_busy_timeout(tmp_path: Path) -> None:
    with migrated_app(f"sqlite:///{tmp_path / 'locked.db'}") as app:
        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another writer, mid-transaction
        try:
            account = {"email": "busy@example.com", "password": PASSWORD, "display_name": "Busy"}
            started = time.monotonic()
            response = app.test_client().post("/api/v1/auth/register", json=account)
            waited = time.monotonic() - started
        finally:
            holder.rollback()
            holder.close()
        assert_problem(response, 503, "database_timeout")
        assert 4 < waited < 8  # SQLite's busy_timeout (5 s) first: a short lock is simply waited out
        assert app.test_client().post("/api/v1/auth/register", json=account).status_code == 201


def test_outages_are_503_but_faulty_queries_stay_500(database_app: Flask) -> None:
    app = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], TESTING=False))
    statement_error = ProgrammingError("SELECT nope", {}, Exception("no such column"))
    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    def raising(error: Exception) -> Callable[[], None]:
        def view() -> None:
            raise error

        return public(view)

    app.add_url_rule("/bug", "bug", raising(statement_error))
    app.add_url_rule("/outage", "outage", raising(lost))
    client = app.test_client()
    assert_problem(client.get("/bug"), 500, "internal_error")
    assert_problem(client.get("/outage"), 503, "database_unavailable")
    assert client.get("/api/v1/health/ready").status_code == 200  # the session is usable afterwards
    with app.app_context():
        db.engine.dispose()


def test_concurrent_writers_on_sqlite_get_no_500s(tmp_path: Path) -> None:
    """The embedded default under a burst of registrations: WAL and the busy timeout absorb it."""
    with migrated_app(f"sqlite:///{tmp_path / 'burst.db'}") as app:
        answers: list[int] = []

        def register(i: int) -> None:
            account = {"email": f"burst-{i}@example.com", "password": PASSWORD, "display_name": "B"}
            answers.append(app.test_client().post("/api/v1/auth/register", json=account).status_code)

        threads = [threading.Thread(target=register, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(set(answers)) == [201], answers
