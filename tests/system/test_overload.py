"""Overload on the loopback stack: a long lock in Postgres holds every worker, and 30 clients call
through nginx. The wait in front of the workers stays bounded (requests that waited too long are
shed with 503 problem+json), kubelet's liveness probe as the manifest renders it keeps passing, and
readiness fails while the pod is saturated. Postgres of its own; every process is stopped by its PID."""

import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.core.config import SETTINGS
from tests.support.kube import api_container, probe_passes
from tests.support.loopback import (
    Load,
    Redis,
    assert_clean_503s,
    gunicorn,
    migrated_database,
    statuses,
    table_lock,
)
from tests.support.postgres import Cluster
from tests.support.stack import Reply, running, send_json, start_nginx, wait_for

pytestmark = pytest.mark.timeout(150)  # a bound on each test, should a wait in it ever hang


@dataclass
class Nginx:
    port: int

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        return send_json(self.port, method, path, body, token, timeout=40)


@dataclass(eq=False)  # a Thread must stay hashable
class Prober(threading.Thread):
    """Runs a probe every second, as kubelet does (periodSeconds shortened), and keeps each result."""

    probe: dict[str, Any]
    port: int

    def __post_init__(self) -> None:
        super().__init__(daemon=True)
        self.results: list[tuple[float, bool]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.results.append((time.monotonic(), probe_passes(self.probe, self.port)))
            self.done.wait(1)

    def stop(self) -> list[bool]:
        self.done.set()
        self.join(timeout=10)
        return [passed for _, passed in self.results]


def test_a_long_lock_sheds_load_instead_of_queueing_and_liveness_holds(
    cluster: Cluster, redis: Redis, tmp_path: Path
) -> None:
    database = migrated_database(cluster)
    container = api_container()
    # The defaults: two sync workers, a 3 s lock timeout, the default queue timeout.
    with gunicorn(tmp_path / "app", database, RATELIMIT_STORAGE_URI=redis.url) as server:
        nginx_command, nginx_port = start_nginx(tmp_path / "nginx", server.port)
        with running(nginx_command, tmp_path / "nginx.log") as nginx:
            edge = Nginx(nginx_port)
            wait_for(lambda: edge.request("GET", "/api/v1/health/live").status == 200, "nginx", process=nginx)
            token = server.register()["access_token"]
            me = ("GET", "/api/v1/users/me", None, token)
            with table_lock(database):
                liveness = Prober(container["livenessProbe"], server.port)
                readiness = Prober(container["readinessProbe"], server.port)
                with Load(edge, lambda _c, _n: ("me", me), clients=30) as load:
                    time.sleep(2)
                    liveness.start()
                    readiness.start()
                    time.sleep(12)
                lived, readied = liveness.stop(), readiness.stop()
            released = time.monotonic()
            back = wait_for(lambda: probe_passes(container["readinessProbe"], server.port), "readiness again", 15)
            assert edge.request("GET", "/api/v1/users/me", token=token).status == 200

    outcomes = load.outcomes
    waits = sorted(o.seconds for o in outcomes)
    # Every caller gets an answer it can act on: a clean 503 with Retry-After, never nginx's 504.
    unusual = [line for line in (tmp_path / "nginx.log").read_text().splitlines() if '" 503 ' not in line]
    assert statuses(outcomes).keys() == {503}, ([o for o in outcomes if o.status != 503], unusual[-20:])
    assert_clean_503s(outcomes, "database_timeout", "overloaded")
    queue = SETTINGS["REQUEST_QUEUE_TIMEOUT"].parse(server.env["REQUEST_QUEUE_TIMEOUT"])
    lock = float(server.env["DB_LOCK_TIMEOUT"])
    # Waited at most the queue timeout for a worker, then at most the lock timeout in it (plus slack
    # for a machine shared with other test runs).
    assert waits[-1] < queue + lock + 2.5, waits[-10:]
    assert lived and all(lived), lived  # kubelet would not restart the pod
    assert readied and not all(readied), readied  # the Service stops sending it more
    print(
        f"{len(outcomes)} answers {statuses(outcomes)}, median wait {statistics.median(waits):.1f}s, "
        f"longest {waits[-1]:.1f}s; liveness {lived.count(True)}/{len(lived)} passed, readiness "
        f"{readied.count(True)}/{len(readied)}; ready again {back:.1f}s after the lock went "
        f"({time.monotonic() - released:.1f}s)"
    )
