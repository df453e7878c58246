"""A Postgres that stops answering without going away (frozen by SIGSTOP: the kernel still accepts and
acknowledges, so no timeout of the server's or of TCP's fires), and one that is asked to stop politely.
Requests get 503 problem+json within a bound and liveness keeps answering; a smart shutdown completes.
On a cluster of their own; only processes started here are signalled, by PID."""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.loopback import Load, Redis, assert_clean_503s, children, gunicorn, migrated_database
from tests.support.postgres import Cluster
from tests.support.stack import send_json

pytestmark = pytest.mark.timeout(150)

# Small timeouts so the bound is short: the client-side deadline on a wait for the server is
# DB_STATEMENT_TIMEOUT + DB_CONNECT_TIMEOUT, and a request may then try one new connection.
HANG = {"DB_STATEMENT_TIMEOUT": "2", "DB_CONNECT_TIMEOUT": "2", "GUNICORN_TIMEOUT": "30"}
BOUND = 2 + 2 + 2


def server_processes(cluster: Cluster) -> list[int]:
    """The postmaster and every process it started (backends, background workers)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return [postmaster, *children(postmaster)]


@pytest.fixture
def frozen(cluster: Cluster) -> Iterator[Callable[[bool], None]]:
    """freeze(True/False) stops or continues the cluster's processes; continued afterwards in any case."""
    stopped: list[int] = []

    def freeze(on: bool) -> None:
        if on:
            stopped[:] = server_processes(cluster)
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
        else:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
            stopped.clear()

    try:
        yield freeze
    finally:
        freeze(False)


def test_a_frozen_postgres_gives_503s_within_the_bound_and_liveness_answers(
    cluster: Cluster, frozen: Callable[[bool], None], redis: Redis, tmp_path: Path
) -> None:
    database = migrated_database(cluster)
    with gunicorn(tmp_path, database, WEB_CONCURRENCY="2", RATELIMIT_STORAGE_URI=redis.url, **HANG) as server:
        token = server.register()["access_token"]
        me = ("GET", "/api/v1/users/me", None, token)
        live: list[tuple[int, float]] = []
        done = threading.Event()

        def probe() -> None:
            while not done.is_set():
                started = time.monotonic()
                try:
                    status = send_json(server.port, "GET", "/api/v1/health/live", timeout=40).status
                except OSError:
                    status = 0
                live.append((status, time.monotonic() - started))
                done.wait(1)

        prober = threading.Thread(target=probe, daemon=True)
        with Load(server, lambda _c, _n: ("me", me), clients=3) as load:
            time.sleep(1)
            frozen(True)
            prober.start()
            time.sleep(15)
            done.set()
            prober.join(60)
            during = list(load.outcomes)
            frozen(False)
            thawed = time.monotonic()
            time.sleep(3)
        froze = [o for o in during if o.status != 200]
        assert froze, "no request met the frozen server"
        assert {o.status for o in froze} == {503}, [(o.status, o.code, round(o.seconds, 1)) for o in froze]
        # Or shed on arrival, having queued over REQUEST_QUEUE_TIMEOUT behind the requests the server holds.
        assert_clean_503s(froze, "database_unavailable", "database_timeout", "overloaded")
        access = server.access()
        app_seconds = [access[o.request_id]["duration_ms"] / 1000 for o in froze]
        assert max(app_seconds) < BOUND + 2, app_seconds
        # Liveness touches no database: it answers as soon as a worker is free, never after a worker timeout.
        assert live and all(status == 200 for status, _ in live), live
        assert max(seconds for _, seconds in live) < BOUND + 2, live
        assert "WORKER TIMEOUT" not in server.log.read_text()
        after = [o for o in load.outcomes if o.started > thawed + 1]
        assert after and {o.status for o in after} == {200}, after[:5]
    print(
        f"frozen: {len(froze)} 503s, app seconds max {max(app_seconds):.1f}; "
        f"liveness max {max(s for _, s in live):.1f}s"
    )


def test_smart_shutdown_completes_once_idle_connections_close(cluster: Cluster, redis: Redis, tmp_path: Path) -> None:
    """pg_ctl stop -m smart waits for every client to disconnect; an idle pool must let go by itself."""
    database = migrated_database(cluster)
    with gunicorn(
        tmp_path, database, WEB_CONCURRENCY="2", RATELIMIT_STORAGE_URI=redis.url, DB_IDLE_TIMEOUT="2"
    ) as server:
        token = server.register()["access_token"]
        for _ in range(4):
            assert server.request("GET", "/api/v1/users/me", token=token).status == 200
        stop = [*cluster.as_owner, str(cluster.bindir / "pg_ctl"), "-D", str(cluster.data), "-m"]
        try:
            result = subprocess.run(
                [*stop, "smart", "-t", "20", "-w", "stop"], capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert not cluster.is_running()
        finally:
            if cluster.is_running():  # still waiting for the app's connections: end them, for the next test
                subprocess.run([*stop, "fast", "-w", "stop"], capture_output=True, check=False)
            cluster.start_server()
        # The pool notices the restart and connects anew.
        assert server.request("GET", "/api/v1/users/me", token=token).status in (200, 503)
        assert server.request("GET", "/api/v1/users/me", token=token).status == 200
