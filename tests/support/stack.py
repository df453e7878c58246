"""Processes and HTTP on loopback, for the system tests: Debian's nginx with the project's nginx.conf,
servers run in child processes and stopped by their PID, requests with http.client, and bounded waits."""

import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.core.config import SETTINGS
from tests.support.app import ROOT
from tests.support.postgres import free_port

WAIT = 30  # seconds: the longest a wait here lasts unless told otherwise

# What the official image's and Debian's nginx.conf put around a conf.d file (Debian's sets gzip on
# at this level too, so a repeat in nginx.conf would be caught here). Temp paths go to the prefix.
MAIN_CONF = """\
{user}
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr;
events {{ worker_connections 1024; }}  # the official image's figure (Debian's: 768)
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


def require(tool: str, install: str) -> str:
    """The path of a program the system tests run for real, from the venv (pip-installed tools) or the
    PATH; missing is a failure, never a skip. `install` says how to get it."""
    venv = Path(sys.executable).parent / tool
    if venv.exists():
        return str(venv)
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin:/usr/bin")
    if path is None:
        pytest.fail(f"{tool} not found, and the system tests run it for real: {install}", pytrace=False)
    return path


def nginx_binary() -> str:
    return require("nginx", "Debian: apt-get install nginx")


def render_nginx(directory: Path, upstream_port: int | Sequence[int], listen_port: int) -> Path:
    """nginx.conf with loopback ports instead of compose's, inside a main config; returns the main config.

    Several upstream ports become one upstream group that nginx balances round robin, as it does over
    the addresses of a scaled compose service (`docker compose up --scale app=3`). With max_fails=0:
    nginx.conf reaches those addresses through a variable, so it makes the group anew for each request
    and remembers no failure past it; a named group's default (max_fails=1, fail_timeout=10s) would
    count an instance that is back and ready as down for ten seconds more.
    """
    site = (ROOT / "nginx.conf").read_text()
    upstream = f"http://127.0.0.1:{upstream_port};"
    if not isinstance(upstream_port, int):
        servers = "".join(f"    server 127.0.0.1:{port} max_fails=0;\n" for port in upstream_port)
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


def wait_for(
    condition: Callable[[], bool],
    what: str,
    seconds: float = WAIT,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> float:
    """Poll until condition() holds; return how long it took. Fail after `seconds`, or at once when
    `process` (a server being waited for) has exited; the end of `log` goes into the failure."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited ({process.returncode}){log_tail(log)}")
        try:
            if condition():
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    pytest.fail(f"timed out after {seconds}s waiting for {what}{log_tail(log)}")


def log_tail(log: Path | None) -> str:
    return f":\n{log.read_text()[-3000:]}" if log else ""


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
        MAIL_BACKEND="memory",  # production refuses console; nothing here reads the mail
        PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    # One worker: per-process rate-limit counters (memory://) are refused in production otherwise.
    return {**os.environ, **settings, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
