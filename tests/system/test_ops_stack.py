"""What an operator sees of the deployed shape: Debian's nginx with the project's nginx.conf, gunicorn
(gunicorn.conf.py, two workers, production settings: JSON logs), Redis, the test database. The logs
of all of them hold no password or token; each request is one access line in one shape; /metrics
adds up the workers and stays behind nginx."""

import os
import re
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import DATABASES
from tests.support.loopback import Gunicorn, Redis, gunicorn, migrate
from tests.support.stack import Reply, assert_nginx_problem, running, send, send_json, start_nginx, wait_for

pytestmark = pytest.mark.timeout(120)  # a bound on each test, should a wait in it ever hang

FIELDS = {"time", "level", "event", "logger", "method", "path", "status", "duration_ms", "user_id", "client_ip"}


@dataclass
class Ops:
    server: Gunicorn
    nginx_port: int
    nginx_log: Path

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        """Through nginx, from 127.0.0.2, with a request id of our own."""
        headers = {"X-Request-ID": f"ops-{uuid.uuid4().hex[:12]}"}
        return send_json(self.nginx_port, method, path, body, token, headers, source="127.0.0.2")

    def nginx_lines(self, request_id: str) -> list[str]:
        return [line for line in self.nginx_log.read_text().splitlines() if f"rid={request_id} " in line]


@pytest.fixture(scope="module")
def ops(new_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    directory = tmp_path_factory.mktemp("ops")
    redis = Redis(directory / "redis")
    redis.start()
    try:
        database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
        # Production settings (so JSON logs), behind one proxy.
        with gunicorn(directory, database, RATELIMIT_STORAGE_URI=redis.url, PROXY_HOPS="1") as server:
            nginx, port = start_nginx(directory / "nginx", server.port)
            log = directory / "nginx.log"
            with running(nginx, log) as process:
                wait_for(
                    lambda: send(port, "GET", "/api/v1/health/ready").status == 200, "nginx", process=process, log=log
                )
                yield Ops(server, port, log)
    finally:
        redis.stop()


def test_no_password_or_token_reaches_any_log(ops: Ops) -> None:
    """Canaries in a failed and a successful login, a refresh, tokens in the query string."""
    password, wrong, in_query = (f"canary-{name}-{uuid.uuid4().hex}" for name in ("password", "wrong", "query"))
    email = f"canary-{uuid.uuid4().hex[:8]}@example.com"
    assert (
        ops.call("POST", "/api/v1/auth/register", {"email": email, "password": password, "display_name": "C"}).status
        == 201
    )
    assert ops.call("POST", "/api/v1/auth/login", {"email": email, "password": wrong}).status == 401
    tokens = ops.call("POST", "/api/v1/auth/login", {"email": email, "password": password}).json()
    fresh = ops.call("POST", "/api/v1/auth/refresh", token=tokens["refresh_token"]).json()
    access = fresh["access_token"]
    assert ops.call("GET", f"/api/v1/users/me?access_token={access}&password={in_query}", token=access).status == 200
    assert ops.call("GET", f"/api/v1/users/me?jwt={access}").status == 401  # tokens only count in the header
    assert ops.call("POST", "/api/v1/auth/logout", token=access).status == 204

    logs = {"app and gunicorn": ops.server.log.read_text(), "nginx": ops.nginx_log.read_text()}
    secrets = [password, wrong, in_query, tokens["access_token"], tokens["refresh_token"], *fresh.values()]
    secrets += [ops.server.env["JWT_SECRET_KEY"], ops.server.env["SECRET_KEY"]]
    for name, text in logs.items():
        leaked = [secret for secret in secrets if isinstance(secret, str) and len(secret) > 8 and secret in text]
        assert not leaked, f"{name} log holds a secret"
    events = {line["event"] for line in ops.server.lines()}
    assert {"login.failed", "login.succeeded", "logout", "request"} <= events  # the logs are not just empty
    assert "/api/v1/users/me" in logs["nginx"]


def test_each_request_is_one_access_line_in_one_shape(ops: Ops) -> None:
    account = {
        "email": f"shape-{uuid.uuid4().hex[:8]}@example.com",
        "password": "one shape for every line",
        "display_name": "S",
    }
    assert ops.call("POST", "/api/v1/auth/register", account).status == 201
    credentials = {"email": account["email"], "password": account["password"]}
    token = ops.call("POST", "/api/v1/auth/login", credentials).json()["access_token"]
    replies = [ops.call("GET", "/api/v1/users/me", token=token) for _ in range(5)]
    user_id = replies[0].json()["id"]

    lines = ops.server.lines()
    assert lines and len(lines) == len(ops.server.log.read_text().splitlines())  # every line is JSON
    assert all(FIELDS | {"request_id"} <= line.keys() for line in lines)  # gunicorn's own lines too
    assert {line["logger"] for line in lines} >= {"gunicorn.error", "app.access"}
    for reply in replies:
        request_id = reply.headers["X-Request-ID"]
        (line,) = [line for line in lines if line["event"] == "request" and line["request_id"] == request_id]
        assert (line["path"], line["status"], line["user_id"]) == ("/api/v1/users/me", 200, user_id)
        assert line["client_ip"] == "127.0.0.2"  # the caller nginx saw, not nginx itself
        wait_for(lambda rid=request_id: len(ops.nginx_lines(rid)) == 1, "nginx's line (written after the reply)", 5)


def test_metrics_add_up_the_workers_and_survive_one_dying(ops: Ops) -> None:
    server = ops.server

    def scrape() -> dict[str, float]:
        text = server.request("GET", "/metrics").body.decode()
        wanted = {
            "live": 'http_requests_total{endpoint="/api/v1/health/live",method="GET",status="200"}',
            "capacity": "db_pool_capacity",
        }
        values = dict(re.findall(r"^(\S+) (\S+)$", text, re.MULTILINE))
        return {name: float(values.get(series, 0)) for name, series in wanted.items()}

    before = scrape()
    for _ in range(30):
        assert server.request("GET", "/api/v1/health/live").status == 200
    # Whichever worker answers the scrape, it reports what both served.
    assert [scrape()["live"] for _ in range(6)] == [before["live"] + 30] * 6
    # Per worker, two pools (the request's, and the caller lookup's) of DB_POOL_SIZE + DB_MAX_OVERFLOW.
    assert before["capacity"] == 2 * 2 * (5 + 10)

    # A worker forked from the master's app (preload_app) is ready, gauges stated, as soon as it runs.
    killed = min(server.workers())
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: len(server.workers() - {killed}) == 2, "a new worker", 10)
    after = scrape()
    assert after["live"] == before["live"] + 30  # a dead worker's requests still count
    assert after["capacity"] == before["capacity"]  # its gauges left with it (child_exit)


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "//metrics", "/%6Detrics", "/metrics?format=text"])
def test_nginx_keeps_metrics_private(ops: Ops, path: str) -> None:
    reply = send(ops.nginx_port, "GET", path)
    body = assert_nginx_problem(reply, 404)
    wait_for(lambda: len(ops.nginx_lines(body["request_id"])) == 1, "nginx's access line", 5)
    assert "upstream=- " in ops.nginx_lines(body["request_id"])[0]  # no worker ever saw it
    assert ops.server.request("GET", "/metrics").status == 200  # while the app itself serves it
