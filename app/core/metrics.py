"""Prometheus metrics at /metrics: requests by endpoint and status, their latency, the database pools, the
mail outbox's backlog.

Under gunicorn each worker writes its figures to files in PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py
makes one and clears it at start) and /metrics adds them up, whichever worker answers the scrape.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.mmap_dict import MmapedDict
from sqlalchemy import event
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from app.core.logs import elapsed
from app.core.outbox import backlog_registry
from app.toolkit.markers import always_answered, exempt, public

# Decided at import, as prometheus_client decides at import how it stores values: the two agree.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ

LABELS = ["method", "endpoint", "status"]
REQUESTS = Counter("http_requests_total", "Requests answered, by endpoint and status", LABELS)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request, by endpoint and status",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# livesum: the figure of every running worker, added up; a dead worker's share is dropped (child_exit).
POOL_IN_USE = Gauge(
    "db_pool_connections_in_use", "Database connections checked out of the pools", multiprocess_mode="livesum"
)
POOL_OPEN = Gauge("db_pool_connections_open", "Database connections the pools hold open", multiprocess_mode="livesum")
POOL_CAPACITY = Gauge(
    "db_pool_capacity", "Connections the pools may open: pool size plus overflow", multiprocess_mode="livesum"
)


# Each gauge moves only in pairs the pool's events mark on the connection: SQLAlchemy also checks in
# a connection whose checkout failed (say, the database just went away), which had no checkout event.
@event.listens_for(Pool, "checkout")
def _checked_out(_dbapi_connection: Any, entry: ConnectionPoolEntry, _proxy: Any) -> None:
    entry.info["metrics_in_use"] = True
    POOL_IN_USE.inc()


@event.listens_for(Pool, "checkin")
def _checked_in(_dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
    if entry.info.pop("metrics_in_use", False):
        POOL_IN_USE.dec()


@event.listens_for(Pool, "connect")
def _opened(_dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
    entry.info["metrics_open"] = True
    POOL_OPEN.inc()


@event.listens_for(Pool, "close")
def _closed(_dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
    if entry.info.pop("metrics_open", False):
        POOL_OPEN.dec()


# The kinds whose totals must outlive a worker: a recycled worker's counts go into one archive file per
# kind, so the folder holds the live workers' files and the archives however often workers are replaced.
ARCHIVED_KINDS = ("counter", "histogram", "summary")


@contextmanager
def _files_locked(directory: str, exclusive: bool) -> Iterator[None]:
    # A scrape between adding a dead worker's counts to the archive and removing its files would count
    # them twice (or, the other way round, not at all): Prometheus reads a counter that drops as a reset.
    with open(os.path.join(directory, "archive.lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def archive_dead_process(pid: int, directory: str) -> None:
    """Fold a dead worker's counters into the archive files and remove its files (gunicorn's child_exit)."""
    with _files_locked(directory, exclusive=True):
        for kind in ARCHIVED_KINDS:
            path = os.path.join(directory, f"{kind}_{pid}.db")
            if not os.path.exists(path):
                continue
            archive = MmapedDict(os.path.join(directory, f"{kind}_archive.db"))  # type: ignore[no-untyped-call]
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(path):  # type: ignore[no-untyped-call]
                    total, _ = archive.read_value(key)  # type: ignore[no-untyped-call]
                    archive.write_value(key, total + value, timestamp)  # type: ignore[no-untyped-call]
            finally:
                archive.close()  # type: ignore[no-untyped-call]
            os.remove(path)
        # Its gauges (livesum: connections of a pool that no longer exists) leave with it.
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _count(response: Response) -> Response:
    # The route's pattern, not the URL: one series per endpoint, however many ids are asked for.
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    labels = (request.method, endpoint, str(response.status_code))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(elapsed())
    return response


@public  # Prometheus scrapes without a token; nginx.conf keeps /metrics from the public
@exempt  # and no rate limit may make a scrape miss
@always_answered  # a saturated instance is when the figures matter most
def metrics() -> Response:
    """The metrics in Prometheus' text format, summed over the workers under gunicorn."""
    backlog = backlog_registry()  # first: its connection is back in the pool before the pool figures are read
    if not MULTIPROCESS:
        return Response(generate_latest(REGISTRY) + generate_latest(backlog), content_type=CONTENT_TYPE_LATEST)
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    with _files_locked(directory, exclusive=False):
        text = generate_latest(registry)
    return Response(text + generate_latest(backlog), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Count every request (call it early, like logs.init_app) and serve /metrics."""
    pools = [app.config["SQLALCHEMY_ENGINE_OPTIONS"], *app.config["SQLALCHEMY_BINDS"].values()]
    capacity = sum(o.get("pool_size", 5) + o.get("max_overflow", 10) for o in pools)  # SQLAlchemy's defaults
    POOL_CAPACITY.set(capacity)
    if MULTIPROCESS:
        # A worker forked from the master that made the app (gunicorn.conf.py's preload_app) starts with
        # figures of its own, all zero: each states its pools again.
        os.register_at_fork(after_in_child=lambda: POOL_CAPACITY.set(capacity))
    app.after_request(_count)
    app.add_url_rule("/metrics", "metrics", metrics)
