"""Liveness and readiness probes."""

from functools import cache

import redis
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_restx import Resource
from sqlalchemy.exc import SQLAlchemyError

from app.errors import ApiError
from app.extensions import api, db
from app.markers import exempt, public
from app.openapi import model, problems
from app.schemas import HealthSchema

ns = api.namespace("health", description="Probes for load balancers and orchestrators")


@cache
def migration_heads(directory: str) -> set[str]:
    return set(ScriptDirectory(directory).get_heads())


def redis_answers(uri: str) -> bool:
    """Whether Redis answers a PING within REDIS_TIMEOUT."""
    client = redis.Redis.from_url(uri, **current_app.config["RATELIMIT_STORAGE_OPTIONS"])
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@ns.route("/live")
class Live(Resource):
    @public
    @ns.doc(security=[])
    @ns.response(200, "The process is up", model(HealthSchema))
    @exempt
    def get(self) -> dict[str, str]:
        """Report that the process is up (touches nothing else)."""
        return {"status": "ok"}


@ns.route("/ready")
class Ready(Resource):
    @public
    @ns.doc(security=[])
    @ns.response(200, "Ready to serve", model(HealthSchema))
    @problems(503, limited=False)
    @exempt
    def get(self) -> dict[str, str]:
        """Report whether the database (and Redis, if used) answers and the schema is at the latest migration."""
        try:
            with db.engine.connect() as connection:
                current = set(MigrationContext.configure(connection).get_current_heads())
        except SQLAlchemyError as e:
            raise ApiError(503, "database_unavailable", "The database cannot be reached.") from e
        if current != migration_heads(current_app.extensions["migrate"].directory):
            raise ApiError(503, "schema_not_current", "The database schema is not at the latest migration.")
        storage = current_app.config["RATELIMIT_STORAGE_URI"]
        if storage.startswith(("redis://", "rediss://")) and not redis_answers(storage):
            raise ApiError(503, "redis_unavailable", "Redis, which keeps the rate-limit counters, cannot be reached.")
        return {"status": "ready"}
