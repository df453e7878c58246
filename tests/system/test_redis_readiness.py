"""Readiness with Redis keeping the rate limits: a real redis-server, killed and started again under an
in-process app (the database side of resilience: tests/core/test_resilience.py)."""

from flask import Flask

from app import create_app
from tests.support.app import assert_problem, settings, timed
from tests.support.loopback import Redis


def test_readiness_checks_redis_when_it_keeps_the_rate_limits(database_app: Flask, redis: Redis) -> None:
    url = database_app.config["DATABASE_URL"]
    client = create_app(settings(DATABASE_URL=url, RATELIMIT_STORAGE_URI=redis.url)).test_client()
    assert client.get("/api/v1/health/ready").status_code == 200
    redis.kill()
    assert timed(lambda: assert_problem(client.get("/api/v1/health/ready"), 503, "redis_unavailable")) < 2
    redis.start()
    assert client.get("/api/v1/health/ready").status_code == 200
