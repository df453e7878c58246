"""The deployed shape on loopback: Debian's nginx with the project's nginx.conf, in front of gunicorn
(gunicorn.conf.py, from the venv), in front of Postgres. The same request flow as scripts/compose-smoke,
plus what nginx itself must do. Ports are picked at run time; everything is stopped by PID."""

import gzip
import http.client
import json
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.core.config import database_url
from tests.support import stack_flow
from tests.support.app import DATABASES, ROOT
from tests.support.postgres import free_port
from tests.support.stack import (
    Reply,
    app_env,
    assert_nginx_problem,
    nginx_binary,
    nginx_logged,
    running,
    send,
    start_nginx,
    wait_for,
)

SECURITY_HEADERS = ["X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"]


@dataclass
class Stack:
    nginx_port: int
    app_port: int
    database_url: str
    access_log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def get(self, path: str, **kwargs: Any) -> Reply:
        return send(self.nginx_port, "GET", path, **kwargs)

    def logged(self, request_id: str) -> str:
        return nginx_logged(self.access_log, request_id)


@pytest.fixture(scope="module")
def stack(new_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx_binary()
    directory = tmp_path_factory.mktemp("stack")
    database = new_database("postgres" if "postgres" in DATABASES else "sqlite")
    app_port = free_port()
    env = app_env(database, app_port)
    migrate = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr

    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    nginx, nginx_port = start_nginx(directory / "nginx", app_port)
    env["PUBLIC_URL"] = f"http://127.0.0.1:{nginx_port}"  # what clients call: nginx
    with (
        running(gunicorn, directory / "gunicorn.log", env) as app_process,
        running(nginx, directory / "nginx.log") as nginx_process,
    ):
        stack = Stack(nginx_port, app_port, database, directory / "nginx.log")
        wait_for(
            lambda: send(app_port, "GET", "/api/v1/health/ready").status == 200,
            "gunicorn",
            process=app_process,
            log=directory / "gunicorn.log",
        )
        wait_for(
            lambda: stack.get("/api/v1/health/ready").status == 200,
            "nginx",
            process=nginx_process,
            log=stack.access_log,
        )
        yield stack


def test_nginx_conf_passes_nginx_t(tmp_path: Path) -> None:
    command, _ = start_nginx(tmp_path, free_port())
    result = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_the_user_flow_works_through_nginx(stack: Stack) -> None:
    stack_flow.full(stack.base, f"flow-{uuid.uuid4().hex[:8]}@example.com")


def test_the_callers_request_id_comes_back_and_nginx_makes_one_when_missing(stack: Stack) -> None:
    assert stack.get("/api/v1/health/live", headers={"X-Request-ID": "trace-42"}).headers["X-Request-ID"] == "trace-42"

    made = stack.get("/api/v1/health/live").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert "upstream=127.0.0.1:" in stack.logged(made)  # nginx's id reached the app, which answered with it

    unsafe = stack.get("/api/v1/health/live", headers={"X-Request-ID": 'x" y'}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe)


def session_ips(stack: Stack, email: str) -> list[str]:
    """The client addresses the app recorded for the account's logins."""
    engine = sa.create_engine(database_url(stack.database_url))
    try:
        with engine.connect() as connection:
            ips = connection.execute(
                sa.text("SELECT s.ip FROM refresh_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = :e"),
                {"e": email},
            ).scalars()
            return list(ips)
    finally:
        engine.dispose()


def login_spoofing(stack: Stack, port: int, source: str) -> str:
    """Register, then log in from `source` to `port` with a made-up X-Forwarded-For; the account's email."""
    email = f"ip-{uuid.uuid4().hex[:8]}@example.com"
    account = {"email": email, "password": stack_flow.PASSWORD, "display_name": "IP"}
    assert stack_flow.call("POST", f"{stack.base}/api/v1/auth/register", account).status == 201
    login = send(
        port,
        "POST",
        "/api/v1/auth/login",
        body=json.dumps({"email": email, "password": stack_flow.PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": "6.6.6.6"},
        source=source,
    )
    assert login.status == 200, login.body
    return email


def test_the_app_sees_the_address_nginx_saw_not_a_spoofed_one(stack: Stack) -> None:
    assert session_ips(stack, login_spoofing(stack, stack.nginx_port, "127.0.0.2")) == ["127.0.0.2"]


def test_a_client_that_reaches_gunicorn_directly_cannot_choose_its_address(stack: Stack) -> None:
    """Only nginx (127.0.0.1, FORWARDED_ALLOW_IPS) may say who the client is; anyone else is who they are."""
    assert session_ips(stack, login_spoofing(stack, stack.app_port, "127.0.0.3")) == ["127.0.0.3"]


def test_a_forged_host_reaches_no_redirect_through_nginx(stack: Stack) -> None:
    """nginx passes the caller's Host on; the app builds URLs, Werkzeug's redirects too, on PUBLIC_URL."""
    reply = stack.get("//api/v1//health/live", headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert (reply.status, reply.headers["Location"]) == (308, f"{stack.base}/api/v1/health/live")


def test_a_body_over_1_mib_gets_413_problem_json_from_nginx(stack: Stack) -> None:
    too_big = json.dumps({"email": "a" * (1024 * 1024)}).encode()
    reply = send(
        stack.nginx_port, "POST", "/api/v1/auth/login", body=too_big, headers={"Content-Type": "application/json"}
    )
    body = assert_nginx_problem(reply, 413)
    assert "upstream=- " in stack.logged(body["request_id"])  # no worker ever saw it

    # Just under the limit it reaches the app, which judges the content instead.
    fits = json.dumps({"email": "a" * (1024 * 1024 - 100), "password": "x"}).encode()
    reply = send(
        stack.nginx_port, "POST", "/api/v1/auth/login", body=fits, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 422, reply.body[:300]


def test_nginx_refuses_trace_as_problem_json(stack: Stack) -> None:
    assert_nginx_problem(send(stack.nginx_port, "TRACE", "/api/v1/health/live"), 405)


def test_upstream_down_gets_502_problem_json(tmp_path: Path) -> None:
    nginx, port = start_nginx(tmp_path, upstream_port=free_port())  # nothing listens there
    with running(nginx, tmp_path / "nginx.log") as process:
        wait_for(lambda: send(port, "GET", "/").status == 502, "nginx", process=process, log=tmp_path / "nginx.log")
        reply = send(port, "GET", "/api/v1/health/ready")
    assert_nginx_problem(reply, 502)
    assert reply.headers["Retry-After"] == "5"


def test_server_header_names_no_version(stack: Stack) -> None:
    assert stack.get("/api/v1/health/live").headers.get_all("Server") == ["nginx"]


def test_json_is_gzipped(stack: Stack) -> None:
    reply = stack.get("/api/v1/swagger.json", headers={"Accept-Encoding": "gzip"})
    assert reply.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(reply.body))["swagger"] == "2.0"


def test_nginx_passes_the_apps_security_headers_through_unchanged(stack: Stack) -> None:
    direct = send(stack.app_port, "GET", "/api/v1/health/live")
    proxied = stack.get("/api/v1/health/live")
    for name in SECURITY_HEADERS:
        assert proxied.headers.get_all(name) == direct.headers.get_all(name), name


def send_raw(port: int, data: bytes) -> Reply:
    """Bytes as they are, for requests no HTTP client would send; the answer parsed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Reply(response.status, response.headers, response.read())


@pytest.mark.parametrize("length", [4_200, 7_900])
def test_a_request_line_nginx_takes_is_one_gunicorn_takes(stack: Stack, length: int) -> None:
    """Between gunicorn's default limit (4 KiB) and nginx's (8 KiB), gunicorn answered HTML 414."""
    path = "/api/v1/health/live?pad=" + "a" * (length - len("GET /api/v1/health/live?pad= HTTP/1.1"))
    reply = stack.get(path)
    assert reply.status == 200, reply.body[:300]


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET /api/v1/health/live?pad=" + b"a" * 9_000 + b" HTTP/1.1", 414),
        (b"GET /api/v1/health/live HTTP/1.1\r\nX-Big: " + b"b" * 9_000, 400),
        (b"NOT A REQUEST LINE", 400),
        (b"GET /api/v1/\x01health HTTP/1.1", 400),
    ],
    ids=["request line over 8 KiB", "header over 8 KiB", "garbage", "control byte"],
)
def test_what_nginx_refuses_is_problem_json_with_the_security_headers(
    stack: Stack, request_line: bytes, status: int
) -> None:
    reply = send_raw(stack.nginx_port, request_line + b"\r\nHost: localhost\r\n\r\n")
    assert_nginx_problem(reply, status)
    for header in SECURITY_HEADERS:
        assert reply.headers[header], header


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"GET /api/v1/health/live?pad=" + b"a" * 8_200 + b" HTTP/1.1\r\nHost: localhost", 414),
        (b"GET /api/v1/health/live HTTP/1.1\r\nHost: localhost" + b"\r\nX-A: 1" * 120, 431),
        (b"GET /api/v1/health/live HTTP/1.1\r\nHost: localhost\r\nNo colon here", 400),
        (b"GET /api/v1/health/live HTTP/1.1\r\nHost: localhost\r\nBad Name: 1", 400),
        (b"NOT A REQUEST LINE", 400),
    ],
    ids=["request line over 8190", "too many headers", "header without a colon", "space in a name", "garbage"],
)
def test_what_gunicorn_refuses_is_problem_json_with_the_security_headers(
    stack: Stack, request_head: bytes, status: int
) -> None:
    """A client that reaches gunicorn directly (a peer pod, a misrouted port) gets no HTML error page."""
    reply = send_raw(stack.app_port, request_head + b"\r\n\r\n")
    assert reply.status == status, reply.body[:300]
    assert reply.headers["Content-Type"] == "application/problem+json"
    body = reply.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["code"]
    assert body["request_id"] == reply.headers["X-Request-ID"]
    assert b"NOT A REQUEST" not in reply.body and b"colon" not in reply.body  # nothing of the request echoed
    for header in SECURITY_HEADERS:
        assert reply.headers[header], header
    assert reply.headers["Cache-Control"] == "no-store"
