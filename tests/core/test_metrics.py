"""/metrics in the Prometheus text format: requests by endpoint and status, latency, the database pool.
(Summed over several gunicorn workers, and hidden by nginx: tests/system/test_ops_stack.py.)"""

import re
import uuid
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from app import create_app
from app.core.extensions import db
from app.core.metrics import archive_dead_process
from tests.support.app import settings

LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def sample(client: FlaskClient, name: str, **labels: str) -> float:
    """The value of one series in /metrics (0 if it does not exist yet)."""
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        found = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if found and found.group(1) == name and dict(LABEL.findall(found.group(2) or "")) == labels:
            return float(found.group(3))
    return 0.0


def test_metrics_are_public_prometheus_text(client: FlaskClient) -> None:
    response = client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    for name in ("http_requests_total", "http_request_duration_seconds", "db_pool_connections_in_use"):
        assert f"# TYPE {name} " in text


def test_requests_are_counted_by_endpoint_and_status(client: FlaskClient) -> None:
    detail = {"method": "GET", "endpoint": "/api/v1/users/<uuid:user_id>"}
    before = sample(client, "http_requests_total", **detail, status="401")
    for _ in range(3):
        client.get(f"/api/v1/users/{uuid.uuid4()}")  # three ids, one series
    assert sample(client, "http_requests_total", **detail, status="401") == before + 3

    unknown = {"method": "GET", "endpoint": "unmatched", "status": "404"}
    before = sample(client, "http_requests_total", **unknown)
    client.get(f"/no/such/{uuid.uuid4()}")
    assert sample(client, "http_requests_total", **unknown) == before + 1

    live = {"method": "GET", "endpoint": "/api/v1/health/live", "status": "200"}
    before = sample(client, "http_request_duration_seconds_count", **live)
    client.get("/api/v1/health/live")
    assert sample(client, "http_request_duration_seconds_count", **live) == before + 1
    assert sample(client, "http_request_duration_seconds_bucket", **live, le="+Inf") == before + 1


def test_pool_figures_follow_the_connections(app: Flask) -> None:
    client = app.test_client()
    with app.app_context():
        idle = sample(client, "db_pool_connections_in_use")
        with db.engine.connect():
            assert sample(client, "db_pool_connections_in_use") == idle + 1
        assert sample(client, "db_pool_connections_in_use") == idle
        assert sample(client, "db_pool_connections_open") >= 1
    assert sample(client, "db_pool_capacity") > 0


def test_scrapes_are_never_rate_limited(app: Flask) -> None:
    limited = create_app(settings(DATABASE_URL=app.config["DATABASE_URL"], RATELIMIT_PER_CALLER="2 per minute"))
    client = limited.test_client()
    assert [client.get("/metrics").status_code for _ in range(5)] == [200] * 5
    assert [client.get("/api/v1/users/me").status_code for _ in range(3)][-1] == 429  # the quota is on
    with limited.app_context():
        db.engine.dispose()


def write_worker_file(path: Path, values: dict[str, float]) -> None:
    """A file as a worker's prometheus_client writes it."""
    written = MmapedDict(str(path))  # type: ignore[no-untyped-call]
    for key, value in values.items():
        written.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
    written.close()  # type: ignore[no-untyped-call]


def test_ten_thousand_dead_workers_leave_one_archive_and_every_count(tmp_path: Path) -> None:
    """What gunicorn's child_exit does for each recycled worker, 10,000 times: the files a worker writes
    (a counter, a histogram, a livesum gauge) fold into one archive per kind and the totals stay exact."""
    directory = str(tmp_path)
    labels = (["method", "endpoint", "status"], ["GET", "/api/v1/health/live", "200"])
    counter = mmap_key("http_requests_total", "http_requests_total", *labels, "Requests")
    buckets = [
        mmap_key("latency", "latency_bucket", [*labels[0], "le"], [*labels[1], le], "Latency") for le in ("0.1", "+Inf")
    ]
    observed = mmap_key("latency", "latency_sum", *labels, "Latency")
    gauge = mmap_key("pool_in_use", "pool_in_use", [], [], "In use")
    workers = range(100_000, 110_000)
    # Two requests, one observed in the 0.1 s bucket (+Inf holds only those above every other bucket).
    histogram = {buckets[0]: 1.0, buckets[1]: 0.0, observed: 1.0}
    for pid in workers:
        write_worker_file(tmp_path / f"counter_{pid}.db", {counter: 2.0})
        write_worker_file(tmp_path / f"histogram_{pid}.db", histogram)
        write_worker_file(tmp_path / f"gauge_livesum_{pid}.db", {gauge: 1.0})
        archive_dead_process(pid, directory)

    assert sorted(path.name for path in tmp_path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
    assert sum(path.stat().st_size for path in tmp_path.glob("*")) <= 4 * 1024 * 1024  # the 1 MiB file minimum
    registry = CollectorRegistry()
    MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    samples = {(s.name, s.labels.get("le")): s.value for metric in registry.collect() for s in metric.samples}
    assert samples[("http_requests_total", None)] == 2 * len(workers)
    assert samples[("latency_bucket", "+Inf")] == len(workers)
    assert samples[("latency_sum", None)] == len(workers)
    assert ("pool_in_use", None) not in samples  # the dead workers' gauges went with them
