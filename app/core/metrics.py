"""Prometheus metrics at /metrics: requests by endpoint and status, their latency, the database pools.

Under gunicorn each worker writes its figures to files in PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py
makes one and clears it at start) and /metrics adds them up, whichever worker answers the scrape.
"""

import os
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
from sqlalchemy import event
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from app.core.logs import elapsed
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
    registry = REGISTRY
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Count every request (call it early, like logs.init_app) and serve /metrics."""
    pools = [app.config["SQLALCHEMY_ENGINE_OPTIONS"], *app.config["SQLALCHEMY_BINDS"].values()]
    POOL_CAPACITY.set(sum(o.get("pool_size", 5) + o.get("max_overflow", 10) for o in pools))  # SQLAlchemy's defaults
    app.after_request(_count)
    app.add_url_rule("/metrics", "metrics", metrics)
