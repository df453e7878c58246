"""Rate limits stay global when the app scales out: two gunicorn instances (two workers each) that
share one Redis count as one. With memory:// each of the four workers would count on its own."""

import secrets
from collections.abc import Callable
from pathlib import Path

from app.core.config import SETTINGS
from tests.support.app import DATABASES, PASSWORD
from tests.support.loopback import Redis, gunicorn, migrate
from tests.support.stack import send

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


def test_wrong_current_password_limit_holds_across_instances_sharing_redis(
    new_database: Callable[[str], str], redis: Redis, tmp_path: Path
) -> None:
    """Guesses at the current password through a stolen token count once per account, whichever
    worker of whichever instance, password change or email change, they reach."""
    database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
    limits = {
        "RATELIMIT_STORAGE_URI": redis.url,
        "RATELIMIT_PASSWORD_ACCOUNT": SETTINGS["RATELIMIT_PASSWORD_ACCOUNT"].default,  # 5 per 15 minutes
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),  # one key: a token from either instance works at both
    }
    with gunicorn(tmp_path / "a", database, **limits) as a, gunicorn(tmp_path / "b", database, **limits) as b:
        token = a.register()["access_token"]
        new = "a new and rather long passphrase"  # a valid one: only the current password is wrong
        guesses = [
            ("POST", "/api/v1/users/me/password", {"current_password": "guess " * 4, "new_password": new}),
            ("PATCH", "/api/v1/users/me", {"email": "thief@example.com", "current_password": "guess " * 4}),
        ]
        refused = [(a, b)[i % 2].request(*guesses[i % 2], token=token).status for i in range(5)]
        assert refused == [422] * 5
        right = {"current_password": PASSWORD, "new_password": new}
        for server in (a, b):
            sixth = server.request("POST", "/api/v1/users/me/password", right, token=token)  # even the right one
            assert sixth.status == 429 and sixth.headers["Content-Type"] == "application/problem+json", sixth.body
            assert 1 <= int(sixth.headers["Retry-After"]) <= 901
            assert server.request("GET", "/api/v1/users/me", token=token).status == 200


def hostile_guesses(email: str) -> dict[str, bytes]:
    """Bodies that carry a guess at the account's password in ways no login body should."""
    guess = f'"email": "{email}", "password": "not the password at all"'
    domain = email.partition("@")[2]
    return {
        "deep JSON": ("{" + guess + ', "deep": ' + "[" * 50_000 + "]" * 50_000 + "}").encode(),
        "deep JSON only": ("[" * 50_000 + "]" * 50_000).encode(),
        "a lone surrogate": ("{" + guess.replace(domain, "x\\ud800" + domain) + "}").encode(),
        "not an object": b"[1, 2]",
        "no email": b'{"password": "not the password at all"}',
    }


def test_an_account_at_its_limit_stays_limited_whatever_the_guesses_carry(
    new_database: Callable[[str], str], redis: Redis, tmp_path: Path
) -> None:
    """No request body can make a worker drop its Redis counters for its own; only a real Redis
    outage does, and then readiness and the log say so."""
    database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
    limits = {"RATELIMIT_STORAGE_URI": redis.url, "RATELIMIT_LOGIN_ACCOUNT": "3 per 15 minutes"}
    with gunicorn(tmp_path, database, **limits) as server:  # two workers
        email = server.register()["email"]
        wrong = {"email": email, "password": "not the password at all"}
        assert [server.request("POST", LOGIN, wrong).status for _ in range(3)] == [401] * 3

        for name, body in hostile_guesses(email).items():
            for _ in range(4):  # enough to reach both workers
                reply = send(server.port, "POST", LOGIN, body, {"Content-Type": "application/json"})
                assert reply.status in {400, 422, 429}, (name, reply.status, reply.body[:300])
        right = {"email": email, "password": PASSWORD}
        assert [server.request("POST", LOGIN, right).status for _ in range(4)] == [429] * 4
        ready = server.request("GET", "/api/v1/health/ready")
        assert ready.status == 200 and "degraded" not in ready.json()  # the limits were never off
        assert not [line for line in server.lines() if "unreachable" in line["event"]]

        redis.kill()
        ready = server.request("GET", "/api/v1/health/ready")
        assert ready.status == 200 and ready.json()["degraded"] == ["redis_unavailable"]  # said, and still serving
        server.request("POST", LOGIN, right)
        assert [line for line in server.lines() if "Rate limit storage unreachable" in line["event"]]


def test_the_quota_holds_across_instances_within_its_bound_and_asks_redis_once_per_batch(
    new_database: Callable[[str], str], redis: Redis, tmp_path: Path
) -> None:
    """The per-caller quota is counted in each worker and added to Redis in batches: across two instances
    (four workers) it lets through at most workers x batch more than the limit, then answers 429 with
    Retry-After everywhere, while Redis sees a fraction of the requests. With Redis gone it fails open:
    each worker counts on its own."""
    import redis as redis_client  # the client the app uses; only this test reads Redis' own statistics

    database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
    limit, batch, workers = 200, 20, 4
    limits = {
        "RATELIMIT_STORAGE_URI": redis.url,
        "RATELIMIT_PER_CALLER": f"{limit} per minute",
        "QUOTA_BATCH": str(batch),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),  # one key: a token from either instance works at both
    }
    stats = redis_client.Redis.from_url(redis.url)
    with gunicorn(tmp_path / "a", database, **limits) as a, gunicorn(tmp_path / "b", database, **limits) as b:
        token = a.register()["access_token"]
        commands = int(stats.info("stats")["total_commands_processed"])
        statuses = [(a, b)[i % 2].request("GET", "/api/v1/users/me", token=token).status for i in range(limit)]
        asked = int(stats.info("stats")["total_commands_processed"]) - commands - 1  # less our own INFO
        assert statuses == [200] * limit
        assert asked <= limit // 2, f"{asked} Redis commands for {limit} requests"

        answered = limit
        while (reply := (a, b)[answered % 2].request("GET", "/api/v1/users/me", token=token)).status == 200:
            answered += 1
            assert answered <= limit + workers * batch, "the quota let through more than its bound"
        assert reply.status == 429 and reply.headers["Content-Type"] == "application/problem+json", reply.body
        assert reply.json()["code"] == "too_many_requests"
        for server in (a, b):  # each of its two workers learns it within a batch of its own (or a second)
            replies = [server.request("GET", "/api/v1/users/me", token=token) for _ in range(2 * batch + 1)]
            refused = replies[-1]
            assert refused.status == 429, [r.status for r in replies]
            assert 1 <= int(refused.headers["Retry-After"]) <= 61
            assert refused.headers["X-RateLimit-Remaining"] == "0"

        other = b.register()["access_token"]
        redis.kill()
        assert [(a, b)[i % 2].request("GET", "/api/v1/users/me", token=other).status for i in range(8)] == [200] * 8
        assert [line for line in a.lines() + b.lines() if line["event"] == "ratelimit.quota_unreachable"]
