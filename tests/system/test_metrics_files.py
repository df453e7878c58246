"""Recycled gunicorn workers leave no metrics files behind: /metrics stays fast and /tmp stays small (the
Kubernetes one is a 16 MiB memory volume), and what the dead workers counted still counts."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.app import DATABASES
from tests.support.loopback import Redis, gunicorn, migrate

pytestmark = pytest.mark.timeout(300)

LIVE = 'http_requests_total{endpoint="/api/v1/health/live",method="GET",status="200"}'
LIVE_COUNT = 'http_request_duration_seconds_count{endpoint="/api/v1/health/live",method="GET",status="200"}'
RECYCLES = 40


def test_recycled_workers_leave_bounded_files_and_exact_counters(
    new_database: Callable[[str], str], redis: Redis, tmp_path: Path
) -> None:
    database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
    # Every worker leaves after its first request: each request below is one recycle.
    options = {"RATELIMIT_STORAGE_URI": redis.url, "GUNICORN_MAX_REQUESTS": "1", "GUNICORN_MAX_REQUESTS_JITTER": "0"}
    with gunicorn(tmp_path / "app", database, **options) as server:
        metrics = Path(server.env["PROMETHEUS_MULTIPROC_DIR"])
        for _ in range(RECYCLES):
            assert server.request("GET", "/api/v1/health/live").status == 200
        text = server.request("GET", "/metrics").body.decode()
        values = dict(re.findall(r"^(\S+) (\S+)$", text, re.MULTILINE))
        assert float(values[LIVE]) == RECYCLES  # every dead worker's requests, each once
        assert float(values[LIVE_COUNT]) == RECYCLES
        # Per worker, two pools of DB_POOL_SIZE + DB_MAX_OVERFLOW: dead workers' gauges are gone.
        assert float(values["db_pool_capacity"]) <= 2 * 2 * (5 + 10)

        files = list(metrics.glob("*.db"))
        # The live workers' and the master's own files plus one archive per kind, however many have died.
        assert len(files) <= 16, sorted(f.name for f in files)
        assert sum(f.stat().st_size for f in files) <= 16 * 1024 * 1024 // 16
