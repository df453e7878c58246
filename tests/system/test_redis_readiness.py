"""Readiness with Redis keeping the rate limits: a real redis-server, killed and started again under an
in-process app (the database side of resilience: tests/core/test_resilience.py; under gunicorn:
tests/system/test_faults.py)."""

import logging
import re
import time

import pytest
from flask import Flask

from app import create_app
from tests.support.app import settings
from tests.support.loopback import Redis


def redis_up(metrics: str) -> float:
    (value,) = re.findall(r'^dependency_up\{dependency="redis"\} (\S+)$', metrics, re.MULTILINE)
    return float(value)


def test_a_redis_outage_degrades_readiness_but_keeps_the_pod_ready(
    database_app: Flask, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Requests keep working without Redis (the limits fail open), so readiness stays 200 and says what
    is degraded; the state shows in the metrics and, once per change, in the logs."""
    url = database_app.config["DATABASE_URL"]
    client = create_app(settings(DATABASE_URL=url, RATELIMIT_STORAGE_URI=redis.url)).test_client()
    assert client.get("/api/v1/health/ready").get_json() == {"status": "ready"}
    assert redis_up(client.get("/metrics").get_data(as_text=True)) == 1
    caplog.clear()  # from here on: what this outage logs
    redis.kill()
    with caplog.at_level(logging.INFO, logger="app.health"):
        for _ in range(3):
            started = time.monotonic()
            ready = client.get("/api/v1/health/ready")
            assert time.monotonic() - started < 2  # REDIS_TIMEOUT bounds the check
            assert ready.status_code == 200, ready.get_data()
            assert ready.get_json() == {"status": "ready", "degraded": ["redis_unavailable"]}
        assert redis_up(client.get("/metrics").get_data(as_text=True)) == 0
        redis.start()
        assert client.get("/api/v1/health/ready").get_json() == {"status": "ready"}
        assert redis_up(client.get("/metrics").get_data(as_text=True)) == 1
    changes = [
        (r.levelname, r.getMessage(), getattr(r, "dependency", None)) for r in caplog.records if r.name == "app.health"
    ]
    assert changes == [("WARNING", "dependency.down", "redis"), ("INFO", "dependency.up", "redis")]
