"""A rolling deploy on the loopback stack: the migration Job runs while this release's gunicorn serves,
and instances stop while requests wait for them. Postgres of its own (as in test_faults.py); every
process is started here and stopped by its PID."""

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import ROOT
from tests.support.loopback import Redis, gunicorn, migrated_database, sql, start_cluster, table_lock
from tests.support.migrations import NEW_TABLE, migrations_copy, previous_revision
from tests.support.postgres import Cluster
from tests.support.stack import Reply, wait_for

pytestmark = pytest.mark.timeout(150)  # a bound on each test, should a wait in it ever hang

READY = "/api/v1/health/ready"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def flask_db(database: str, *args: str) -> None:
    """`flask db ...` as the migration Job runs it, in a process of its own."""
    env = {**os.environ, "DATABASE_URL": database, "SECRET_KEY": "", "JWT_SECRET_KEY": "", "FLASK_APP": "wsgi"}
    command = [sys.executable, "-m", "flask", "db", *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_running_release_stays_ready_while_the_next_one_migrates(
    cluster: Cluster, redis: Redis, tmp_path: Path
) -> None:
    """The Job applies a revision this code does not know: the old pods stay ready and keep serving.
    A database behind the code (the new pods before their migration ran) is not ready."""
    database = migrated_database(cluster)
    with gunicorn(tmp_path / "old", database, RATELIMIT_STORAGE_URI=redis.url) as old:
        user = old.register()
        directory, revision = migrations_copy(tmp_path, NEW_TABLE)
        flask_db(database, "upgrade", "--directory", str(directory))
        assert sql(database, "SELECT version_num FROM alembic_version") == [(revision,)]
        for _ in range(4):  # both workers
            assert old.request("GET", READY).json() == {"status": "ready"}
            assert old.request("GET", "/api/v1/users/me", token=user["access_token"]).status == 200

        flask_db(database, "downgrade", "--directory", str(directory), previous_revision())
        for _ in range(4):
            behind = old.request("GET", READY)
            assert behind.status == 503 and behind.json()["code"] == "schema_not_current", behind.body


def test_sigterm_with_requests_queued_loses_none(cluster: Cluster, redis: Redis, tmp_path: Path) -> None:
    """Writes queue behind two workers stuck on a lock; SIGTERM comes. Every queued write is still
    served and applied (gunicorn keeps accepting until its queue is empty), readiness says the instance
    is draining meanwhile, and the master exits 0 when the last request is answered."""
    database = migrated_database(cluster)
    settings = {"RATELIMIT_STORAGE_URI": redis.url, "DB_LOCK_TIMEOUT": "10", "GUNICORN_GRACEFUL_TIMEOUT": "15"}
    with gunicorn(tmp_path, database, **settings) as server:
        editors = [server.register() for _ in range(6)]
        answers: dict[str, Reply | str] = {}  # an answer, or the error that came instead (a reset)

        def call(name: str, method: str, path: str, body: object = None, token: str | None = None) -> None:
            try:
                answers[name] = server.request(method, path, body, token, timeout=30)
            except (OSError, http.client.HTTPException) as e:
                answers[name] = type(e).__name__

        patches = [
            threading.Thread(
                target=call, args=(e["id"], "PATCH", "/api/v1/users/me", {"display_name": "drained"}, e["access_token"])
            )
            for e in editors
        ]
        with table_lock(database):
            for thread in patches:
                thread.start()
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            wait_for(lambda: sql(database, waiting)[0][0] >= 2, "both workers to wait on the lock", 10)
            time.sleep(1)  # the other four wait in the listen queue
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            probe = threading.Thread(target=call, args=("ready", "GET", READY))
            probe.start()
            time.sleep(1)
        for thread in [*patches, probe]:
            thread.join(timeout=30)
        code = server.process.wait(timeout=30)

    got = {name: getattr(reply, "status", reply) for name, reply in answers.items()}
    assert got == {**{e["id"]: 200 for e in editors}, "ready": 503}, got
    names = sql(database, "SELECT display_name FROM users WHERE id = ANY(%s::uuid[])", [e["id"] for e in editors])
    assert names == [("drained",)] * 6
    ready = answers["ready"]
    assert isinstance(ready, Reply) and ready.json()["code"] == "draining", ready
    assert code == 0
