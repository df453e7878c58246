"""The loopback stack for the fault and operations tests: a Postgres cluster of their own (which they
stop and start), redis-server, gunicorn from the venv, and a bounded load of concurrent requests.

Ports are picked at run time; every process is started here and stopped by its PID, failures too.
The process and request helpers are those of tests/support/stack.py (`running`, `send_json`, `wait_for`).
"""

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt
import psycopg2
import pytest
from flask_migrate import upgrade

from app import create_app
from app.core.cli import init_migrations
from app.core.extensions import db
from tests.support.app import PASSWORD, UNLIMITED, settings
from tests.support.postgres import Cluster, find_bindir, free_port
from tests.support.stack import WAIT, Reply, app_env, require, running, send_json, wait_for


def start_cluster() -> Cluster:
    bindir = find_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries not found (Debian: apt-get install postgresql-15)", pytrace=False)
    cluster = Cluster(bindir)
    cluster.start()
    return cluster


def migrated_database(cluster: Cluster) -> str:
    """A new database in the cluster, at the latest migration, whose commits survive a crash."""
    name = f"f_{uuid.uuid4().hex[:12]}"
    url = cluster.create_database(name)
    # The test cluster runs with synchronous_commit=off for speed, which loses the last commits when
    # the server is killed; the fault tests kill it and count commits. A database setting wins over
    # the server's command line.
    sql(url, f"ALTER DATABASE {name} SET synchronous_commit = on")
    return migrate(url)


def migrate(url: str) -> str:
    """Bring a database to the latest migration; its URL."""
    app = create_app(settings(DATABASE_URL=url))
    init_migrations(app)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def sql(url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on its own connection (autocommit) and return its rows."""
    connection = psycopg2.connect(url, connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        connection.close()


@contextmanager
def table_lock(url: str, table: str = "users") -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on a table: every query that touches it waits."""
    connection = psycopg2.connect(url, connect_timeout=5)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        connection.rollback()
        connection.close()


class Redis:
    """redis-server on a free loopback port, without persistence; kill() is the fault."""

    def __init__(self, directory: Path) -> None:
        self.binary = require("redis-server", "Debian: apt-get install redis-server")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen([*command, "--dir", str(self.directory)], stdout=log, stderr=log)
        wait_for(lambda: self.command("PING") == "+PONG", "redis-server", 10)

    def command(self, *words: str) -> str:
        """One command in Redis' inline protocol; the first line of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
            connection.sendall((" ".join(words) + "\r\n").encode())
            return connection.recv(4096).decode().split("\r\n")[0]

    def keys(self) -> int:
        return int(self.command("DBSIZE").lstrip(":"))

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Gunicorn:
    """A running gunicorn master (gunicorn.conf.py, from the venv) and where it logs."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str]

    def request(self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 20) -> Reply:
        return send_json(self.port, method, path, body, token, timeout=timeout)

    def workers(self) -> set[int]:
        return children(self.process.pid)

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (LOG_FORMAT=json)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def access(self) -> dict[str, dict[str, Any]]:
        """The app's access lines, by request id."""
        return {line["request_id"]: line for line in self.lines() if line["event"] == "request"}

    def register(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        """Register and log in a user; the login's tokens plus its id and email."""
        email = email or f"u-{uuid.uuid4().hex[:10]}@example.com"
        account = {"email": email, "password": password, "display_name": "Fault"}
        created = self.request("POST", "/api/v1/auth/register", account)
        assert created.status == 201, created.body
        login = self.request("POST", "/api/v1/auth/login", {"email": email, "password": password})
        assert login.status == 200, login.body
        return {**login.json(), "id": created.json()["id"], "email": email}


def children(pid: int) -> set[int]:
    """The PIDs whose parent is pid (gunicorn's workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after the last ')' do not.
        if int(text.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def stack_env(database: str, port: int, directory: Path, **overrides: str) -> dict[str, str]:
    """Production settings (JSON logs) for one gunicorn, rate limits and the bound on hashing out of the
    way unless overridden."""
    env = app_env(database, port)
    env.update({name: str(value) for name, value in UNLIMITED.items()})
    env.update(
        PROXY_HOPS="0",
        MAIL_BACKEND="memory",
        WEB_CONCURRENCY="2",
        GUNICORN_TIMEOUT="10",
        GUNICORN_GRACEFUL_TIMEOUT="10",
        # No recycling after N requests: the fault tests count worker restarts, and load reaches N.
        GUNICORN_MAX_REQUESTS="0",
        # Its own metrics folder: a run must not add in another's numbers.
        PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"),
    )
    env.update(overrides)
    (directory / "metrics").mkdir(parents=True, exist_ok=True)
    return env


@contextmanager
def gunicorn(
    directory: Path, database: str, wait_ready: bool = True, port: int | None = None, **overrides: str
) -> Iterator[Gunicorn]:
    """gunicorn -c gunicorn.conf.py wsgi:app on a free port (or the given one, to restart an instance
    where its proxy expects it); waits until it answers, stops it after."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = stack_env(database, port, directory, **overrides)
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    log = directory / "gunicorn.log"
    with running(command, log, env) as process:
        server = Gunicorn(process, port, log, env)
        path = "/api/v1/health/ready" if wait_ready else "/api/v1/health/live"
        wait_for(lambda: server.request("GET", path).status == 200, f"gunicorn {path}", process=process, log=log)
        expected = int(env["WEB_CONCURRENCY"])
        wait_for(lambda: len(server.workers()) == expected, f"{expected} gunicorn workers")
        yield server


@contextmanager
def mail_sender(log: Path, env: dict[str, str], *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """`flask mail send-outbox` with an app's settings, polling often; stopped by its PID afterwards."""
    command = [sys.executable, "-m", "flask", "--app", "wsgi:app", "mail", "send-outbox", *options]
    with running(command, log, {**env, "MAIL_POLL_SECONDS": "0.2"}) as process:
        yield process


def stop(process: subprocess.Popen[bytes], seconds: float = WAIT) -> int:
    """SIGTERM the process (one we started) and return its exit code."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=seconds)


def access_token(env: dict[str, str], user_id: str | None = None) -> str:
    """A correctly signed access token for a user and session nobody can check without the database."""
    now = int(time.time())
    claims = {
        "sub": user_id or str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "type": "access",
        "fresh": False,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": env["JWT_ISSUER"],
        "aud": env["JWT_AUDIENCE"],
    }
    return jwt.encode(claims, env["JWT_SECRET_KEY"], algorithm="HS256")


@dataclass
class Outcome:
    """One request of a load: when it started (monotonic), how long it took, what came back."""

    name: str
    started: float
    seconds: float
    status: int  # 0: no HTTP answer at all
    code: str | None = None
    retry_after: str | None = None
    content_type: str | None = None
    request_id: str | None = None
    error: str | None = None


Request = tuple[str, str, Any, str | None]  # method, path, JSON body, bearer token


class Server(Protocol):
    """Where a load's requests go: a gunicorn, or a proxy in front of one."""

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply: ...


@dataclass
class Load:
    """Concurrent clients, each sending the requests its function makes, until stopped.

    make(client, n) returns (name, request) for the n-th request of a client, or None to stop it.
    """

    server: Server
    make: Callable[[int, int], tuple[str, Request] | None]
    clients: int
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> "Load":
        for client in range(self.clients):
            thread = threading.Thread(target=self._client, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WAIT)
        assert not any(thread.is_alive() for thread in self._threads), "a load client did not finish"

    def _client(self, client: int) -> None:
        n = 0
        while not self._stop.is_set():
            made = self.make(client, n)
            if made is None:
                return
            name, (method, path, body, token) = made
            started = time.monotonic()
            try:
                reply = self.server.request(method, path, body, token)
            except (OSError, http.client.HTTPException) as e:
                outcome = Outcome(name, started, time.monotonic() - started, 0, error=type(e).__name__)
            else:
                problem = reply.json() if reply.headers.get("Content-Type") == "application/problem+json" else {}
                outcome = Outcome(
                    name,
                    started,
                    time.monotonic() - started,
                    reply.status,
                    problem.get("code"),
                    reply.headers.get("Retry-After"),
                    reply.headers.get("Content-Type"),
                    reply.headers.get("X-Request-ID"),
                )
            self.outcomes.append(outcome)
            n += 1


def statuses(outcomes: list[Outcome]) -> dict[int, int]:
    counted: dict[int, int] = {}
    for outcome in outcomes:
        counted[outcome.status] = counted.get(outcome.status, 0) + 1
    return dict(sorted(counted.items()))


def assert_clean_503s(outcomes: list[Outcome], *codes: str) -> None:
    """Every 503 is problem+json with Retry-After and one of the expected codes."""
    for outcome in outcomes:
        if outcome.status == 503:
            assert outcome.content_type == "application/problem+json", outcome
            # 5 s, or a second less where Flask-Limiter, which adds its own, rounds it down.
            assert outcome.retry_after in {"4", "5"}, outcome
            assert outcome.code in codes, outcome
