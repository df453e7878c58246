"""Liveness and readiness probes."""

import ast
import logging
import os
from functools import cache
from typing import Any

from flask import current_app
from marshmallow import Schema, fields
from prometheus_client import Gauge
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from app.core.cli import MIGRATIONS
from app.core.extensions import db
from app.core.overload import waiting_for_workers
from app.toolkit import (
    ApiError,
    Namespace,
    Resource,
    always_answered,
    errors,
    exempt,
    operation,
    public,
    response,
)

ns = Namespace("health", description="Probes for load balancers and orchestrators")
log = logging.getLogger(__name__)

# As of the last readiness check (orchestrators probe every few seconds); the latest any worker wrote.
DEPENDENCY_UP = Gauge(
    "dependency_up",
    "1 if an optional dependency answered the last readiness check, 0 if the app runs degraded without it",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)
_last_seen_up: dict[str, bool] = {}


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    degraded = fields.List(
        fields.String(),
        metadata={
            "description": "What the app serves without, when something it can do without is down.",
            "example": ["redis_unavailable"],
        },
    )


# Alembic's revision graph and version table, read without importing alembic: it costs every worker
# 11 MiB (tests/test_health.py checks these agree with alembic's own answers).
@cache
def migration_graph() -> tuple[frozenset[str], frozenset[str]]:
    """Every revision in migrations/versions, and the heads: those no other revision builds on."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found: dict[str, Any] = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                found[node.targets[0].id] = node.value
        revisions.add(ast.literal_eval(found["revision"]))
        down = ast.literal_eval(found["down_revision"])
        parents.update([down] if isinstance(down, str) else down or ())
    return frozenset(revisions), frozenset(revisions - parents)


def migration_heads() -> frozenset[str]:
    """The revisions in migrations/versions that no other revision builds on."""
    return migration_graph()[1]


def schema_behind(current: frozenset[str]) -> bool:
    """Whether the database lacks a migration this code needs.

    A revision the code does not know comes from a later release, whose migrations only add (see
    deploy/k8s/README.md): the database is ahead, and this code still works on it. Known revisions
    other than the heads are older ones: the database is behind.
    """
    revisions, heads = migration_graph()
    return not current or (not current - revisions and not heads <= current)


def current_heads(connection: Connection) -> frozenset[str]:
    """The revisions the database is at; none before the first migration."""
    if not inspect(connection).has_table("alembic_version"):
        return frozenset()
    return frozenset(connection.scalars(text("SELECT version_num FROM alembic_version")))


def redis_answers(uri: str) -> bool:
    """Whether Redis answers a PING within REDIS_TIMEOUT."""
    import redis  # here: only a Redis-backed limiter needs it, and then the limiter has imported it

    client = redis.Redis.from_url(uri, **current_app.config["RATELIMIT_STORAGE_OPTIONS"])
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def observe(dependency: str, up: bool) -> None:
    """Put a dependency's state in the metrics, and in the log when it changes."""
    DEPENDENCY_UP.labels(dependency).set(int(up))
    if _last_seen_up.get(dependency, True) != up:
        level = logging.INFO if up else logging.WARNING
        log.log(level, "dependency.up" if up else "dependency.down", extra={"dependency": dependency})
    _last_seen_up[dependency] = up


@ns.route("/live")
class Live(Resource):
    @operation("checkLive")
    @public
    @exempt
    @always_answered  # however busy: a worker answering at all is alive
    @response(HealthSchema, description="The process is up")
    def get(self) -> dict[str, str]:
        """Report that the process is up (touches nothing else)."""
        return {"status": "ok"}


@ns.route("/ready")
class Ready(Resource):
    @operation("checkReady")
    @public
    @exempt
    @response(HealthSchema, description="Ready to serve")
    @errors(503)
    def get(self) -> dict[str, Any]:
        """Report whether the database answers with this code's migrations (and whether Redis does)."""
        if os.path.exists(os.environ.get("GUNICORN_DRAIN_FLAG", "")):  # set by gunicorn.conf.py on SIGTERM
            raise ApiError(503, "draining", "This instance is shutting down; requests already sent to it still finish.")
        waiting = waiting_for_workers()
        if waiting is not None and waiting > int(os.environ.get("WEB_CONCURRENCY", "1")):
            # More callers queued than there are workers: each waits a whole request at least. Out of the
            # Service until the queue is short, so new callers go to pods that can serve them.
            raise ApiError(503, "saturated", "Every worker is busy and requests are queueing for them.")
        try:
            with db.engine.connect() as connection:
                current = current_heads(connection)
        except SQLAlchemyError as e:
            raise ApiError(503, "database_unavailable", "The database cannot be reached.") from e
        if schema_behind(current):
            raise ApiError(503, "schema_not_current", "The database schema is not at the latest migration.")
        body: dict[str, Any] = {"status": "ready"}
        storage = current_app.config["RATELIMIT_STORAGE_URI"]
        if storage.startswith(("redis://", "rediss://")):
            # Without Redis each worker counts rate limits itself (looser, never refusing): still
            # serving, so still ready; taking every pod out of the Service would be the real outage.
            up = redis_answers(storage)
            observe("redis", up)
            if not up:
                body["degraded"] = ["redis_unavailable"]
        return body
