"""The deployed shape on loopback: Debian's nginx with the project's nginx.conf, in front of gunicorn
(gunicorn.conf.py, from the venv), in front of Postgres. The same request flow as scripts/compose-smoke,
plus what nginx itself must do. Ports are picked at run time; everything is stopped by PID."""

import gzip
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.core.config import SETTINGS, database_url
from tests import stack_flow
from tests.conftest import DATABASES
from tests.postgres import free_port

pytestmark = pytest.mark.system  # real servers and processes: the system tier

ROOT = Path(__file__).resolve().parent.parent
SECURITY_HEADERS = ["X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"]

# What the official image's and Debian's nginx.conf put around a conf.d file (Debian's sets gzip on
# at this level too, so a repeat in nginx.conf would be caught here). Temp paths go to the prefix.
MAIN_CONF = """\
{user}
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    gzip on;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


def nginx_binary() -> str:
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        pytest.fail(
            "nginx not found: these tests run the project's nginx.conf for real (Debian: apt-get install nginx)",
            pytrace=False,
        )
    return path


def render_nginx(directory: Path, upstream_port: int | Sequence[int], listen_port: int) -> Path:
    """nginx.conf with loopback ports instead of compose's, inside a main config; returns the main config.

    Several upstream ports become one upstream group that nginx balances round robin, as it does over
    the addresses of a scaled compose service (`docker compose up --scale app=3`).
    """
    site = (ROOT / "nginx.conf").read_text()
    upstream = f"http://127.0.0.1:{upstream_port};"
    if not isinstance(upstream_port, int):
        servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstream_port)
        site = f"upstream app_instances {{\n{servers}}}\n" + site
        upstream = "http://app_instances;"  # proxy_pass through a variable finds a group by its name
    for old, new in [
        ("http://app:8000;", upstream),
        ("listen 80 default_server;", f"listen 127.0.0.1:{listen_port} default_server;"),
    ]:
        assert site.count(old) == 1, f"nginx.conf no longer has exactly one {old!r}; update render_nginx"
        site = site.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "site.conf").write_text(site)
    # As root the workers would switch to `nobody`, who cannot enter a private temp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    main = directory / "nginx.conf"
    main.write_text(MAIN_CONF.format(user=user, dir=directory))
    return main


@contextmanager
def running(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server in the foreground of a child process; stop that PID (and only it) afterwards."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_nginx(directory: Path, upstream_port: int | Sequence[int]) -> tuple[list[str], int]:
    port = free_port()
    main = render_nginx(directory, upstream_port, port)
    return [nginx_binary(), "-p", str(directory), "-c", str(main), "-e", "stderr"], port


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "",
    timeout: float = 30,
) -> Reply:
    """One request to 127.0.0.1:port, optionally from another loopback address."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def send_json(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    source: str = "",
    timeout: float = 30,
) -> Reply:
    """send() with a JSON body and a bearer token, as an API client sends them."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    return send(port, method, path, body=data, headers=headers, source=source, timeout=timeout)


def wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what}: the process exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def assert_nginx_problem(reply: Reply, status: int) -> dict[str, Any]:
    """An error nginx made itself: problem+json with the usual fields and headers, no version leaked."""
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["code"]
    assert body["request_id"] == reply.headers["X-Request-ID"]
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Server"] == "nginx"
    return body


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


def nginx_logged(access_log: Path, request_id: str) -> str:
    """nginx's access log line for a request id (written when nginx finishes, maybe after the reply)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in access_log.read_text().splitlines() if f"rid={request_id} " in line]
        if lines or time.monotonic() > deadline:
            assert len(lines) == 1, lines
            return lines[0]
        time.sleep(0.1)


def app_env(database: str, port: int) -> dict[str, str]:
    """Production settings behind one proxy; every app setting explicit, so a developer's .env cannot leak in."""
    settings = {name: setting.default for name, setting in SETTINGS.items()}
    settings.update(
        APP_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        JWT_SECRET_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=database,
        PROXY_HOPS="1",
        DOCS_ENABLED="true",
    )
    # One worker: per-process rate-limit counters (memory://) are refused in production otherwise.
    return {**os.environ, **settings, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}


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
    with (
        running(gunicorn, directory / "gunicorn.log", env) as app_process,
        running(nginx, directory / "nginx.log") as nginx_process,
    ):
        stack = Stack(nginx_port, app_port, database, directory / "nginx.log")
        wait_until(
            lambda: send(app_port, "GET", "/api/v1/health/ready").status == 200,
            "gunicorn",
            app_process,
            directory / "gunicorn.log",
        )
        wait_until(lambda: stack.get("/api/v1/health/ready").status == 200, "nginx", nginx_process, stack.access_log)
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


def test_the_app_sees_the_address_nginx_saw_not_a_spoofed_one(stack: Stack) -> None:
    email = f"ip-{uuid.uuid4().hex[:8]}@example.com"
    account = {"email": email, "password": stack_flow.PASSWORD, "display_name": "IP"}
    assert stack_flow.call("POST", f"{stack.base}/api/v1/auth/register", account).status == 201
    login = send(
        stack.nginx_port,
        "POST",
        "/api/v1/auth/login",
        body=json.dumps({"email": email, "password": stack_flow.PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": "6.6.6.6"},
        source="127.0.0.2",
    )
    assert login.status == 200, login.body

    engine = sa.create_engine(database_url(stack.database_url))
    try:
        with engine.connect() as connection:
            ips = connection.execute(
                sa.text("SELECT s.ip FROM refresh_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = :e"),
                {"e": email},
            ).scalars()
            assert list(ips) == ["127.0.0.2"]
    finally:
        engine.dispose()


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
        wait_until(lambda: send(port, "GET", "/").status == 502, "nginx", process, tmp_path / "nginx.log")
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
