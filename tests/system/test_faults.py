"""Faults on the loopback stack (the table "When something goes away" in docs/operations.md): Postgres,
Redis and gunicorn workers fail for real under gunicorn, and the API answers 503 problem+json with
Retry-After, recovers by itself, and loses nothing. Postgres is the subject here, so these run on their
own cluster whatever TEST_DATABASES says. Every wait is bounded; only processes started here are stopped,
by PID."""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tests.support.app import PASSWORD, ROOT
from tests.support.loopback import (
    Gunicorn,
    Load,
    Redis,
    access_token,
    assert_clean_503s,
    gunicorn,
    migrated_database,
    sql,
    statuses,
    table_lock,
)
from tests.support.migrations import migrations_copy
from tests.support.postgres import Cluster
from tests.support.stack import wait_for

pytestmark = pytest.mark.timeout(150)  # a bound on each test, should a wait in it ever hang


@pytest.fixture
def up(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, running again after the test whatever the test did to it."""
    yield cluster
    if not cluster.is_running():
        cluster.start_server()


def me(token: str) -> tuple[str, tuple[str, str, None, str]]:
    return "me", ("GET", "/api/v1/users/me", None, token)


def no_worker_restarts(server: Gunicorn, workers: set[int]) -> None:
    assert server.workers() == workers
    log = server.log.read_text()
    assert "WORKER TIMEOUT" not in log
    assert log.count("Booting worker") == len(workers), log[-3000:]


def test_postgres_down_at_start_then_up(up: Cluster, redis: Redis, tmp_path: Path) -> None:
    """The app starts without its database, says so, never hangs, and recovers by itself."""
    database = migrated_database(up)
    up.stop_server()
    with gunicorn(tmp_path, database, wait_ready=False, RATELIMIT_STORAGE_URI=redis.url) as server:
        workers = server.workers()
        started = time.monotonic()
        ready = server.request("GET", "/api/v1/health/ready")
        assert ready.status == 503 and ready.json()["code"] == "database_unavailable"
        assert ready.headers["Retry-After"] == "5"
        for method, path, body, token in [
            ("POST", "/api/v1/auth/login", {"email": "a@example.com", "password": PASSWORD}, None),
            (
                "POST",
                "/api/v1/auth/register",
                {"email": "b@example.com", "password": PASSWORD, "display_name": "B"},
                None,
            ),
            ("GET", "/api/v1/users/me", None, access_token(server.env)),
        ]:
            reply = server.request(method, path, body, token)
            assert reply.status == 503, (path, reply.body)
            assert reply.headers["Content-Type"] == "application/problem+json"
            assert reply.headers["Retry-After"] in {"4", "5"}  # Flask-Limiter may round it down
            assert reply.json()["code"] == "database_unavailable"
        assert server.request("GET", "/api/v1/health/live").status == 200
        assert time.monotonic() - started < 5  # refused connections fail fast; test_resilience bounds a black hole

        up.start_server()
        recovered = wait_for(lambda: server.request("GET", "/api/v1/health/ready").status == 200, "readiness", 10)
        server.register()  # data endpoints work again, on the same workers
        no_worker_restarts(server, workers)
        assert not [line for line in server.lines() if (line["status"] or 0) >= 500 and line["status"] != 503]
    print(f"readiness recovered {recovered:.1f}s after Postgres started")


def test_postgres_restart_under_load_gives_503s_then_recovers(up: Cluster, redis: Redis, tmp_path: Path) -> None:
    """Only 503s while Postgres is down, the first request after it is back succeeds
    (pool_pre_ping), and killed backends cost nothing; the same workers throughout."""
    database = migrated_database(up)
    with gunicorn(tmp_path, database, WEB_CONCURRENCY="4", RATELIMIT_STORAGE_URI=redis.url) as server:
        workers = server.workers()
        token = server.register()["access_token"]
        with Load(server, lambda _c, _n: me(token), clients=6) as load:
            time.sleep(2)
            up.stop_server()
            time.sleep(2)
            up.start_server()
            back = time.monotonic()
            time.sleep(3)
        outcomes = load.outcomes
        assert set(statuses(outcomes)) == {200, 503}, statuses(outcomes)
        assert_clean_503s(outcomes, "database_unavailable")
        after = sorted((o for o in outcomes if o.started > back), key=lambda o: o.started)
        assert after and all(o.status == 200 for o in after), after[:5]
        assert max(o.seconds for o in outcomes) < 5  # DB_CONNECT_TIMEOUT (3 s) bounds a failing request

        killed = sql(
            database,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres' "
            "AND datname = current_database() AND pid <> pg_backend_pid()",
        )
        assert killed  # the workers' pooled connections
        with Load(server, lambda _c, _n: me(token), clients=4) as load:
            time.sleep(2)
        assert statuses(load.outcomes).keys() == {200}
        no_worker_restarts(server, workers)
    print(f"restart under load: {statuses(outcomes)}, then {statuses(load.outcomes)} after pg_terminate_backend")


def test_a_table_lock_gives_503s_within_the_timeouts_not_worker_timeouts(
    up: Cluster, redis: Redis, tmp_path: Path
) -> None:
    """With `users` locked for 20 s, requests get 503 within lock_timeout (sync workers),
    statement_timeout and pool_timeout (threaded workers, one pooled connection); gunicorn's 10 s
    timeout never fires; everything answers again once the lock is gone."""
    database = migrated_database(up)
    # A request stuck past 10 s would be a WORKER TIMEOUT (sync workers), or hold its thread (gthread).
    # The same keys for both servers, so one token works at either.
    keys = {"SECRET_KEY": secrets.token_urlsafe(48), "JWT_SECRET_KEY": secrets.token_urlsafe(48)}
    common = {"RATELIMIT_STORAGE_URI": redis.url, "GUNICORN_TIMEOUT": "10", **keys}
    with (
        gunicorn(tmp_path / "sync", database, **common, WEB_CONCURRENCY="2", DB_LOCK_TIMEOUT="2") as synced,
        gunicorn(
            tmp_path / "threads",
            database,
            **common,
            WEB_CONCURRENCY="1",
            GUNICORN_THREADS="4",
            DB_POOL_SIZE="1",
            DB_MAX_OVERFLOW="0",
            DB_POOL_TIMEOUT="2",
            DB_LOCK_TIMEOUT="0",  # off: here statement_timeout ends the wait
            DB_STATEMENT_TIMEOUT="3",
        ) as threaded,
    ):
        token = synced.register()["access_token"]
        with table_lock(database):
            locked = time.monotonic()
            with (
                Load(synced, lambda _c, _n: me(token), clients=4) as on_sync,
                Load(threaded, lambda _c, _n: me(token), clients=8) as on_threads,
            ):
                time.sleep(17)  # then each client finishes its request in flight: ~20 s in all
            held = time.monotonic() - locked
        recovered = wait_for(lambda: synced.request("GET", "/api/v1/users/me", token=token).status == 200, "200", 5)
        assert threaded.request("GET", "/api/v1/users/me", token=token).status == 200

        # Seconds each 503 may take in the app: the timeout that produces it (a threaded request may
        # first wait up to pool_timeout for the one connection, then statement_timeout on the lock).
        for server, load, limits in [
            (synced, on_sync, {"database_timeout": 2}),
            (threaded, on_threads, {"database_timeout": 2 + 3, "database_busy": 2}),
        ]:
            during = load.outcomes  # all sent and answered while the lock was held
            assert during and {o.status for o in during} == {503}, statuses(during)
            # A request that queued over REQUEST_QUEUE_TIMEOUT behind the stuck ones is shed on arrival.
            assert_clean_503s(during, *limits, "overloaded")
            access = server.access()
            for code, seconds in limits.items():
                answered = [access[o.request_id]["duration_ms"] for o in during if o.code == code]
                assert answered, f"no {code} from {server.log.parent.name}"
                assert max(answered) < (seconds + 1) * 1000, (code, max(answered))
            assert "WORKER TIMEOUT" not in server.log.read_text()
    print(
        f"lock held {held:.0f}s: sync {statuses(on_sync.outcomes)}, threads {statuses(on_threads.outcomes)}; "
        f"200 again {recovered:.1f}s after release"
    )


def test_redis_down_keeps_revocation_and_login_working(up: Cluster, redis: Redis, tmp_path: Path) -> None:
    """Revocation lives in the database, so a revoked token stays refused without Redis;
    login keeps working and limited, per process (Flask-Limiter's in-memory fallback); readiness stays
    200 and says Redis is gone, and everything recovers without a restart."""
    database = migrated_database(up)
    limits = {"RATELIMIT_STORAGE_URI": redis.url, "RATELIMIT_LOGIN_IP": "4 per minute"}
    with gunicorn(tmp_path, database, **limits) as server:
        workers = server.workers()
        revoked = server.register()
        assert server.request("POST", "/api/v1/auth/logout", token=revoked["access_token"]).status == 204
        valid = server.register()
        assert redis.keys() > 0  # the counters live in Redis

        redis.kill()
        started = time.monotonic()
        ready = server.request("GET", "/api/v1/health/ready")
        assert ready.status == 200 and ready.json()["degraded"] == ["redis_unavailable"], ready.body
        assert time.monotonic() - started < 2  # REDIS_TIMEOUT is 1 s
        assert server.request("GET", "/api/v1/health/live").status == 200
        for _ in range(6):  # enough to reach both workers
            assert server.request("GET", "/api/v1/users/me", token=revoked["access_token"]).status == 401
            assert server.request("GET", "/api/v1/users/me", token=valid["access_token"]).status == 200
        logins = [
            server.request("POST", "/api/v1/auth/login", {"email": valid["email"], "password": PASSWORD}).status
            for _ in range(12)
        ]
        assert set(logins) == {200, 429}, logins
        assert logins.count(200) <= 4 * 2  # the limit still holds, counted per worker (2 of them)

        redis.start()
        wait_for(lambda: server.request("GET", "/api/v1/health/ready").json() == {"status": "ready"}, "readiness", 5)

        def counting_in_redis() -> bool:
            server.request("GET", "/api/v1/users/me", token=valid["access_token"])
            return redis.keys() > 0

        # Flask-Limiter retries the storage with a backoff (1, 2, 4, ... s) in each worker.
        back = wait_for(counting_in_redis, "rate-limit counters back in Redis", 40)
        no_worker_restarts(server, workers)
    print(f"logins during the Redis outage: {logins}; counters back in Redis after {back:.1f}s")


def test_a_killed_worker_is_replaced_and_costs_at_most_its_request(up: Cluster, redis: Redis, tmp_path: Path) -> None:
    """`kill -9` one of three sync workers under load: at most its one in-flight request fails,
    and gunicorn starts a new worker. (nginx's 502 problem+json with no upstream left is
    tests/system/test_stack.py::test_upstream_down_gets_502_problem_json.)"""
    database = migrated_database(up)
    with gunicorn(tmp_path, database, WEB_CONCURRENCY="3", RATELIMIT_STORAGE_URI=redis.url) as server:
        token = server.register()["access_token"]
        before = server.workers()
        with Load(server, lambda _c, _n: me(token), clients=6) as load:
            time.sleep(1.5)
            victim = min(before)
            os.kill(victim, signal.SIGKILL)
            respawned = wait_for(
                lambda: len(server.workers() - before) == 1 and len(server.workers()) == 3, "respawn", 5
            )
            time.sleep(1.5)
        failed = [o for o in load.outcomes if o.status != 200]
        assert len(failed) <= 1, failed
        assert all(o.status == 0 for o in failed), failed  # a reset connection, never a 5xx
        assert victim not in server.workers()
    print(f"worker respawned in {respawned:.1f}s; {len(load.outcomes)} requests, {len(failed)} failed")


def test_sigterm_lets_the_request_in_flight_finish(up: Cluster, redis: Redis, tmp_path: Path) -> None:
    """SIGTERM to the master while a request waits on a lock: that request still gets its 200,
    and the master exits 0 within the graceful timeout."""
    database = migrated_database(up)
    with gunicorn(
        tmp_path, database, RATELIMIT_STORAGE_URI=redis.url, GUNICORN_GRACEFUL_TIMEOUT="10", DB_LOCK_TIMEOUT="8"
    ) as server:
        token = server.register()["access_token"]
        answers: list[int] = []
        with table_lock(database):
            slow = threading.Thread(
                target=lambda: answers.append(server.request("GET", "/api/v1/users/me", token=token).status)
            )
            slow.start()
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            wait_for(lambda: sql(database, waiting)[0][0] > 0, "the request to wait on the lock", 10)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            time.sleep(1.5)
            assert server.process.poll() is None  # still waiting for its worker's request
        slow.join(timeout=10)
        code = server.process.wait(timeout=12)
        exited = time.monotonic() - signalled
    assert answers == [200]
    assert code == 0
    assert exited < 10
    print(f"master exited {exited:.1f}s after SIGTERM, the slow request answered 200")


def flask_db_upgrade(directory: Path) -> list[str]:
    return [sys.executable, "-m", "flask", "db", "upgrade", "--directory", str(directory)]


def cli_env(database: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database, "SECRET_KEY": "", "JWT_SECRET_KEY": "", "FLASK_APP": "wsgi"}


def versions(database: str) -> list[str]:
    return [row[0] for row in sql(database, "SELECT version_num FROM alembic_version")]


def test_a_migration_failing_halfway_leaves_the_previous_revision(up: Cluster, tmp_path: Path) -> None:
    """Transactional DDL on Postgres; the half-made table is rolled back too."""
    database = migrated_database(up)
    before = versions(database)
    failing = (
        "def upgrade():\n"
        '    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.execute("INSERT INTO half_done VALUES (1)")\n'
        '    op.execute("SELECT this_migration_fails_halfway()")\n\n\n'
        "def downgrade():\n    pass\n"
    )
    directory, _ = migrations_copy(tmp_path, failing)
    result = subprocess.run(
        flask_db_upgrade(directory), cwd=ROOT, env=cli_env(database), capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "this_migration_fails_halfway" in result.stderr
    assert versions(database) == before
    assert sql(database, "SELECT to_regclass('half_done')") == [(None,)]


def test_two_migrators_at_once_both_succeed_and_apply_once(up: Cluster, tmp_path: Path) -> None:
    """Two `flask db upgrade` started together on an empty database serialise on
    the advisory lock in migrations/env.py; a slow extra revision makes sure they overlap."""
    database = up.create_database(f"m_{uuid.uuid4().hex[:12]}")
    slow = (
        "def upgrade():\n"
        '    op.create_table("migration_runs", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.execute("SELECT pg_sleep(2)")\n'
        '    op.execute("INSERT INTO migration_runs VALUES (1)")\n\n\n'
        "def downgrade():\n"
        '    op.drop_table("migration_runs")\n'
    )
    directory, revision = migrations_copy(tmp_path, slow)
    command, env = flask_db_upgrade(directory), cli_env(database)
    started = time.monotonic()
    migrators = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)
    ]
    try:
        outputs = [migrator.communicate(timeout=60)[0].decode() for migrator in migrators]
    finally:
        for migrator in migrators:
            if migrator.poll() is None:
                migrator.kill()
                migrator.wait()
    took = time.monotonic() - started
    assert [migrator.returncode for migrator in migrators] == [0, 0], outputs
    assert versions(database) == [revision]
    assert sql(database, "SELECT count(*) FROM migration_runs") == [(1,)]
    # The whole chain ran exactly once: one process logged every step, the other none.
    steps = len(list(ScriptDirectory(str(directory)).walk_revisions()))
    assert sorted(output.count("Running upgrade") for output in outputs) == [0, steps], outputs
    print(f"two migrators finished in {took:.1f}s")


def test_nothing_is_lost_when_postgres_fails_under_writes(up: Cluster, redis: Redis, tmp_path: Path) -> None:
    """Registrations and profile updates race a Postgres crash and killed connections: every 2xx is
    in the database afterwards, and no request, answered or not, left part of its change behind."""
    database = migrated_database(up)
    with gunicorn(tmp_path, database, WEB_CONCURRENCY="4", RATELIMIT_STORAGE_URI=redis.url) as server:
        editors = [server.register() for _ in range(4)]
        run = uuid.uuid4().hex[:6]

        def make(client: int, n: int) -> tuple[str, tuple[str, str, object, str | None]]:
            if client < len(editors):
                name = f"{run}-{client}-{n}"
                return name, ("PATCH", "/api/v1/users/me", {"display_name": name}, editors[client]["access_token"])
            email = f"r-{run}-{client}-{n}@example.com"
            return email, (
                "POST",
                "/api/v1/auth/register",
                {"email": email, "password": PASSWORD, "display_name": "R"},
                None,
            )

        with Load(server, make, clients=len(editors) + 4) as load:
            time.sleep(2)
            up.stop_server()
            time.sleep(1.5)
            up.start_server()
            time.sleep(1.5)
            sql(
                database,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            time.sleep(2)

    outcomes = load.outcomes
    assert set(statuses(outcomes)) <= {200, 201, 503}, statuses(outcomes)
    assert statuses(outcomes).get(503) and (statuses(outcomes).get(200) and statuses(outcomes).get(201))
    assert_clean_503s(outcomes, "database_unavailable")

    registrations = [o for o in outcomes if o.name.startswith("r-")]
    users = dict(sql(database, "SELECT email, id FROM users WHERE email LIKE %s", f"r-{run}-%"))
    assert {o.name for o in registrations if o.status == 201} <= users.keys()
    # Complete or absent: each user has the audit event and the verification token of its transaction.
    partial = sql(
        database,
        "SELECT u.email FROM users u WHERE u.email LIKE %s AND ("
        " NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.target_id = u.id AND a.action = 'user.registered')"
        " OR NOT EXISTS (SELECT 1 FROM account_tokens t WHERE t.user_id = u.id AND t.purpose = 'verify_email'))",
        f"r-{run}-%",
    )
    assert partial == []
    unanswered = {o.name for o in registrations if o.status != 201} & users.keys()

    for client, editor in enumerate(editors):
        mine = [o for o in outcomes if o.name.startswith(f"{run}-{client}-")]
        last_ok = max((i for i, o in enumerate(mine) if o.status == 200), default=-1)
        assert last_ok >= 0
        (name,) = sql(database, "SELECT display_name FROM users WHERE id = %s", editor["id"])[0]
        # The last acknowledged change, or a later one whose answer was lost with the connection.
        assert name in {o.name for o in mine[last_ok:]}, (name, mine[last_ok])
    print(f"writes: {statuses(outcomes)}; registrations committed but answered 503: {len(unanswered)}")
