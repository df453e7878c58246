"""Rate limits stay global when the app scales out: two gunicorn instances (two workers each) that
share one Redis count as one. With memory:// each of the four workers would count on its own."""

from collections.abc import Callable
from pathlib import Path

from app.core.config import SETTINGS
from tests.support.app import DATABASES, PASSWORD
from tests.support.loopback import Redis, gunicorn, migrate

LOGIN = "/api/v1/auth/login"


def test_failed_login_limit_holds_across_instances_sharing_redis(
    new_database: Callable[[str], str], tmp_path: Path
) -> None:
    redis = Redis(tmp_path / "redis")
    redis.start()
    try:
        database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
        limits = {
            "RATELIMIT_STORAGE_URI": redis.url,
            "RATELIMIT_LOGIN_ACCOUNT": SETTINGS["RATELIMIT_LOGIN_ACCOUNT"].default,  # 10 per 15 minutes
            "RATELIMIT_LOGIN_IP": SETTINGS["RATELIMIT_LOGIN_IP"].default,
        }
        with gunicorn(tmp_path / "a", database, **limits) as a, gunicorn(tmp_path / "b", database, **limits) as b:
            email = a.register()["email"]
            wrong = {"email": email, "password": "not the password at all"}
            # Alternate instances (and so workers): no single process ever sees more than a few failures.
            failures = [(a, b)[i % 2].request("POST", LOGIN, wrong).status for i in range(10)]
            assert failures == [401] * 10
            eleventh = b.request("POST", LOGIN, {"email": email, "password": PASSWORD})  # even the right one
            assert eleventh.status == 429, eleventh.body
            assert eleventh.headers["Content-Type"] == "application/problem+json"
            assert 1 <= int(eleventh.headers["Retry-After"]) <= 901  # the 15-minute window, rounded up
            assert a.request("POST", LOGIN, {"email": email, "password": PASSWORD}).status == 429
    finally:
        redis.stop()
