"""A rolling deploy on the loopback stack: the migration Job runs while this release's gunicorn serves,
and instances stop while requests wait for them. Postgres of its own (as in test_faults.py); every
process is started here and stopped by its PID."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import ROOT
from tests.support.loopback import Redis, gunicorn, migrated_database, sql, start_cluster
from tests.support.migrations import NEW_TABLE, migrations_copy, previous_revision
from tests.support.postgres import Cluster

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
