"""The app scaled out: three instances (gunicorn, two sync workers each) behind one nginx
upstream, sharing one Postgres and one Redis. Whichever instance a request reaches, a revoked token
stays revoked, a rate limit counts once, a replayed refresh token ends its session everywhere, and an
instance killed mid-load loses no write it acknowledged.

Loopback only: the project's nginx.conf in Debian's nginx, gunicorn.conf.py from the venv, redis-server,
the suite's Postgres (always Postgres: several processes writing at once is the point). One stack is
shared by the module; each user calls from a loopback address of its own, so the per-IP limits of one
test never meet another's. Ports are picked at run time; every process is stopped by its PID.
"""

import http.client
import os
import secrets
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import PASSWORD, claims, sid
from tests.support.loopback import Gunicorn, Redis, gunicorn, migrate, sql
from tests.support.stack import (
    Reply,
    assert_nginx_problem,
    nginx_logged,
    running,
    send,
    send_json,
    start_nginx,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)  # a bound on each test, should a wait in it ever hang

LOGIN, REFRESH, REGISTER, ME = "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/register", "/api/v1/users/me"
READY = "/api/v1/health/ready"
LOGIN_LIMIT = 6  # RATELIMIT_LOGIN_IP of the stack, per minute: small, so the limit test reaches it at once

_addresses = count(1)


def new_address() -> str:
    """A loopback address no other client in this module calls from (127.1.0.1, 127.1.0.2, ...)."""
    n = next(_addresses)
    return f"127.1.{n // 250}.{n % 250 + 1}"


@dataclass(frozen=True)
class Target:
    """Where a request goes: one instance directly, or nginx in front of all three."""

    name: str
    port: int

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        ip: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """From the loopback address `ip`: the client's address, which nginx passes on as X-Forwarded-For."""
        return send_json(self.port, method, path, body, token, headers, source=ip)


@dataclass(frozen=True)
class Person:
    """A registered user, calling from an address of their own."""

    id: str
    email: str
    ip: str


@dataclass
class Stack:
    """Three instances, nginx in front of them, Postgres and Redis behind; an admin's access token."""

    directory: Path
    database: str
    settings: dict[str, str]  # what every instance shares: secrets, Redis, limits, one proxy hop
    exits: ExitStack
    instances: list[Gunicorn] = field(default_factory=list)
    nginx: Target = Target("nginx", 0)
    nginx_log: Path = Path()
    admin_token: str = ""

    def start(self, index: int, port: int | None = None) -> Gunicorn:
        """Start instance `index` (on `port`, when it comes back); it is stopped with the stack."""
        directory = self.directory / f"instance-{index}-{uuid.uuid4().hex[:6]}"
        return self.exits.enter_context(gunicorn(directory, self.database, wait_ready=True, port=port, **self.settings))

    def instance(self, index: int) -> Target:
        return Target("ABC"[index], self.instances[index].port)

    @property
    def a(self) -> Target:
        return self.instance(0)

    @property
    def b(self) -> Target:
        return self.instance(1)

    @property
    def c(self) -> Target:
        return self.instance(2)


def signup(target: Target) -> Person:
    """Register a new user through target, from a new address."""
    ip, email = new_address(), f"m-{uuid.uuid4().hex[:12]}@example.com"
    reply = target.call("POST", REGISTER, {"email": email, "password": PASSWORD, "display_name": "Multi"}, ip=ip)
    assert reply.status == 201, reply.body
    return Person(reply.json()["id"], email, ip)


def login(target: Target, person: Person) -> dict[str, Any]:
    """A new session for the person: its token pair."""
    reply = target.call("POST", LOGIN, {"email": person.email, "password": PASSWORD}, ip=person.ip)
    assert reply.status == 200, reply.body
    tokens: dict[str, Any] = reply.json()
    return tokens


def assert_refused(reply: Reply, where: Target, code: str = "invalid_token") -> None:
    assert reply.status == 401, (where.name, reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/problem+json", where.name
    assert reply.json()["code"] == code, (where.name, reply.body)


@pytest.fixture(scope="module")
def shared(new_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("multi")
    with ExitStack() as exits:
        redis = Redis(directory / "redis")
        exits.callback(redis.stop)
        redis.start()
        key, jwt_key = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
        settings = {
            "SECRET_KEY": key,
            "JWT_SECRET_KEY": jwt_key,  # one key: a token from any instance is good at every other
            "RATELIMIT_STORAGE_URI": redis.url,
            "RATELIMIT_LOGIN_IP": f"{LOGIN_LIMIT} per minute",
            "PROXY_HOPS": "1",  # behind nginx; a direct call carries no X-Forwarded-For and counts by its own address
        }
        stack = Stack(directory, migrate(new_database("postgres")), settings, exits)
        with ThreadPoolExecutor(3) as pool:  # together, not one after another: each waits for its own readiness
            stack.instances = list(pool.map(stack.start, range(3)))
        command, port = start_nginx(directory / "nginx", [server.port for server in stack.instances])
        log = directory / "nginx.log"
        process = exits.enter_context(running(command, log))
        wait_for(lambda: send(port, "GET", READY).status == 200, "nginx", process=process, log=log)
        stack.nginx, stack.nginx_log = Target("nginx", port), log

        admin = signup(stack.a)
        sql(stack.database, "UPDATE users SET role = 'admin' WHERE id = %s", admin.id)
        stack.admin_token = login(stack.a, admin)["access_token"]
        yield stack
        for server in stack.instances:  # all at once: each instance's own context then only waits for its exit
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)


@pytest.fixture
def stack(shared: Stack) -> Stack:
    """The shared stack with all three instances up: one that a test killed is started again on its
    port, where nginx looks for it, so the tests after that run against a restarted instance."""
    for index, server in enumerate(shared.instances):
        if server.process.poll() is not None:
            shared.instances[index] = shared.start(index, server.port)
    return shared


def revoke(
    stack: Stack, how: str, target: Target, person: Person, first: dict[str, Any], second: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Revoke through target, the way `how` says; the sessions now refused, and those that still work."""
    if how == "logout":
        reply = target.call("POST", "/api/v1/auth/logout", token=first["access_token"], ip=person.ip)
        ended, kept = [first], [second]
    elif how == "logout-all":
        reply = target.call("POST", "/api/v1/auth/logout-all", token=first["access_token"], ip=person.ip)
        ended, kept = [first, second], []
    elif how == "session-revoked":
        path = f"/api/v1/users/me/sessions/{sid(second['access_token'])}"
        reply = target.call("DELETE", path, token=first["access_token"], ip=person.ip)
        ended, kept = [second], [first]
    elif how == "user-disabled":
        reply = target.call("PATCH", f"/api/v1/users/{person.id}", {"is_active": False}, stack.admin_token)
        ended, kept = [first, second], []
    else:
        reply = target.call("DELETE", f"/api/v1/users/{person.id}", token=stack.admin_token)
        ended, kept = [first, second], []
    assert reply.status in (200, 204), (how, reply.status, reply.body)
    return ended, kept


@pytest.mark.parametrize("via", ["direct", "nginx"])
@pytest.mark.parametrize("how", ["logout", "logout-all", "session-revoked", "user-disabled", "user-deleted"])
def test_a_token_revoked_on_one_instance_is_refused_by_the_others(stack: Stack, how: str, via: str) -> None:
    """Revoked at A (or through nginx), a token is refused by B and C (or every instance) on the very next
    request: access and refresh token alike, while a session that was not revoked keeps working."""
    person = signup(stack.a)
    first, second = login(stack.a, person), login(stack.b, person)
    for target in (stack.b, stack.c):
        for tokens in (first, second):
            assert target.call("GET", ME, token=tokens["access_token"], ip=person.ip).status == 200, target.name

    revoker, checkers = (stack.a, [stack.b, stack.c])
    if via == "nginx":
        # Through nginx, which spreads the checks over the instances, then each instance directly.
        revoker, checkers = stack.nginx, [stack.nginx] * 3 + [stack.a, stack.b, stack.c]
    ended, kept = revoke(stack, how, revoker, person, first, second)
    for target in checkers:
        for tokens in ended:
            assert_refused(target.call("GET", ME, token=tokens["access_token"], ip=person.ip), target)
            assert_refused(target.call("POST", REFRESH, token=tokens["refresh_token"], ip=person.ip), target)
        for tokens in kept:
            assert target.call("GET", ME, token=tokens["access_token"], ip=person.ip).status == 200, target.name


def test_a_replayed_refresh_token_ends_the_session_on_every_instance(stack: Stack) -> None:
    """Refreshed twice at A, the first refresh token replayed at B gets 401 refresh_token_reused (two
    rotations old, it is a replay however soon), and the pair A had just issued is refused at C (and
    everywhere): the whole session has ended."""
    person = signup(stack.a)
    old = login(stack.a, person)
    rotated = stack.a.call("POST", REFRESH, token=old["refresh_token"], ip=person.ip)
    assert rotated.status == 200, rotated.body
    rotated = stack.a.call("POST", REFRESH, token=rotated.json()["refresh_token"], ip=person.ip)
    assert rotated.status == 200, rotated.body
    new = rotated.json()
    assert new["refresh_token"] != old["refresh_token"]
    assert stack.c.call("GET", ME, token=new["access_token"], ip=person.ip).status == 200

    assert_refused(
        stack.b.call("POST", REFRESH, token=old["refresh_token"], ip=person.ip), stack.b, "refresh_token_reused"
    )
    for target in (stack.c, stack.a, stack.nginx):
        assert_refused(target.call("POST", REFRESH, token=new["refresh_token"], ip=person.ip), target)
        assert_refused(target.call("GET", ME, token=new["access_token"], ip=person.ip), target)
    session = sid(old["access_token"])
    assert sql(stack.database, "SELECT revoked_at IS NOT NULL FROM refresh_sessions WHERE id = %s", session) == [
        (True,)
    ]


def test_two_instances_refreshing_one_token_at_once_rotate_it_once(stack: Stack) -> None:
    """The same refresh token sent to A and B at the same moment (two tabs, a retry): Postgres lets one
    rotate it; the other, within REFRESH_GRACE_SECONDS of that, gets a pair of the same session. The
    session goes on, and it was rotated once: both pairs carry the one current refresh token."""
    person = signup(stack.a)
    tokens = login(stack.a, person)
    barrier = threading.Barrier(2)

    def refresh(target: Target) -> Reply:
        barrier.wait(timeout=10)
        return target.call("POST", REFRESH, token=tokens["refresh_token"], ip=person.ip)

    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(refresh, [stack.a, stack.b]))
    assert [reply.status for reply in replies] == [200, 200], [reply.body for reply in replies]
    pairs = [reply.json() for reply in replies]
    assert len({claims(pair["refresh_token"])["jti"] for pair in pairs}) == 1
    assert all(stack.c.call("GET", ME, token=pair["access_token"], ip=person.ip).status == 200 for pair in pairs)
    assert stack.c.call("POST", REFRESH, token=pairs[0]["refresh_token"], ip=person.ip).status == 200


@dataclass
class Write:
    """One request of the failover load and its answer (None: no HTTP answer at all)."""

    kind: str  # register, patch or read
    who: str  # the email registered, or the editor's user id
    sent: str  # the display name sent
    started: float
    finished: float
    reply: Reply | None

    @property
    def status(self) -> int:
        return self.reply.status if self.reply else 0


@dataclass
class Writers:
    """Clients writing through nginx until stopped: new registrations, and editors who PATCH their own
    profile with If-Match, reading it again whenever an answer was lost."""

    nginx: Target
    run: str
    writes: list[Write] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def send(self, kind: str, who: str, sent: str, method: str, path: str, **kwargs: Any) -> Reply | None:
        started = time.monotonic()
        try:
            reply: Reply | None = self.nginx.call(method, path, **kwargs)
        except (OSError, http.client.HTTPException):
            reply = None
        self.writes.append(Write(kind, who, sent, started, time.monotonic(), reply))
        return reply

    def register(self, client: int) -> None:
        ip = new_address()
        for n in count():
            if self.stop.is_set():
                return
            email, name = f"mi-{self.run}-{client}-{n}@example.com", f"R {client}-{n}"
            body = {"email": email, "password": PASSWORD, "display_name": name}
            self.send("register", email, name, "POST", REGISTER, body=body, ip=ip)

    def edit(self, person: Person, token: str) -> None:
        etag = None
        for n in count():
            if self.stop.is_set():
                return
            name = f"E {self.run}-{n}"
            if etag is None:  # at first, and after a lost answer: which version is current now?
                reply = self.send("read", person.id, "", "GET", ME, token=token, ip=person.ip)
            else:
                patch = {"body": {"display_name": name}, "headers": {"If-Match": etag}}
                reply = self.send("patch", person.id, name, "PATCH", ME, token=token, ip=person.ip, **patch)
            etag = reply.headers["ETag"] if reply and reply.status == 200 else None


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def version(write: Write) -> int:
    assert write.reply is not None
    return int(write.reply.headers["ETag"].strip('"'))


def test_killing_an_instance_under_load_loses_no_acknowledged_write(stack: Stack) -> None:
    """kill -9 of instance C's master and workers while registrations and If-Match profile edits flow
    through nginx: only requests in flight at C fail, as nginx's 502 problem+json (never replayed, never
    a false 2xx, never a 500); every later request succeeds on A and B; every acknowledged write is in
    Postgres exactly as acknowledged."""
    editors = [signup(stack.a) for _ in range(3)]
    tokens = [login(stack.a, person)["access_token"] for person in editors]
    writers = Writers(stack.nginx, uuid.uuid4().hex[:8])
    victim = stack.instances[2]
    threads = [threading.Thread(target=writers.register, args=(client,)) for client in range(3)]
    threads += [threading.Thread(target=writers.edit, args=pair) for pair in zip(editors, tokens, strict=True)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        doomed = [victim.process.pid, *victim.workers()]
        killed = time.monotonic()
        for pid in doomed:  # the master first, so it cannot start new workers
            os.kill(pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        wait_for(lambda: refuses_connections(victim.port), "the killed instance's port to refuse connections", 10)
        dead = time.monotonic()
        time.sleep(2)
    finally:
        writers.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
    writes = writers.writes

    statuses = Counter(write.status for write in writes)
    assert set(statuses) <= {200, 201, 502}, statuses  # no 500, no 409 from a replayed POST, no 412
    for write in writes:
        if write.status == 502:  # nginx's own answer, for a request C had when it died
            assert write.reply is not None and write.started < dead and write.finished > killed
            body = assert_nginx_problem(write.reply, 502)
            assert f"upstream=127.0.0.1:{victim.port} " in nginx_logged(stack.nginx_log, body["request_id"])
    after = [write for write in writes if write.started > dead]
    assert {write.kind for write in after if write.status in (200, 201)} >= {"register", "patch"}
    assert all(write.status in (200, 201) for write in after), [write.status for write in after]
    assert any(line["path"] == "/api/v1/auth/register" for line in victim.lines())  # C did take part before it died

    rows = sql(
        stack.database, "SELECT email, id::text, display_name FROM users WHERE email LIKE %s", f"mi-{writers.run}-%"
    )
    stored = {email: (user_id, name) for email, user_id, name in rows}
    registered = [write for write in writes if write.kind == "register" and write.status == 201]
    assert registered
    for write in registered:
        assert write.reply is not None
        assert stored.get(write.who) == (write.reply.json()["id"], write.sent), write.who

    for person in editors:
        mine = [write for write in writes if write.who == person.id]
        acknowledged = [write for write in mine if write.kind == "patch" and write.status == 200]
        assert acknowledged, person
        versions = [version(write) for write in acknowledged]
        assert versions == sorted(set(versions)), versions  # each acknowledged PATCH made a version of its own
        last = mine[-1]  # the writers stop well after the kill, so this one was answered
        assert last.status == 200 and last.reply is not None
        stored_name, stored_version = sql(
            stack.database, "SELECT display_name, version FROM users WHERE id = %s", person.id
        )[0]
        assert (stored_name, stored_version) == (last.reply.json()["display_name"], version(last))
    committed = {write.who for write in writes if write.kind == "register" and write.status == 502} & stored.keys()
    print(f"failover: {dict(sorted(statuses.items()))}; registrations answered 502 yet committed: {len(committed)}")


def test_the_login_limit_counts_each_client_once_across_instances_and_nginx(stack: Stack) -> None:
    """RATELIMIT_LOGIN_IP (6 a minute here): 18 logins at once from one client, spread over A, B, C and
    nginx (which passes the client's address on, ignoring an X-Forwarded-For the client made up), give
    exactly 6 successes and then 429 problem+json with Retry-After on every instance; another client
    still logs in."""
    person = signup(stack.a)
    client = new_address()
    credentials = {"email": person.email, "password": PASSWORD}
    targets = [stack.a, stack.b, stack.c, stack.nginx]
    spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}

    def attempt(n: int) -> Reply:
        target = targets[n % len(targets)]
        return target.call("POST", LOGIN, credentials, ip=client, headers=spoofed if target == stack.nginx else None)

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(attempt, range(3 * LOGIN_LIMIT)))
    replies += [target.call("POST", LOGIN, credentials, ip=client) for target in targets]
    statuses = [reply.status for reply in replies]
    assert sorted(statuses) == [200] * LOGIN_LIMIT + [429] * (len(replies) - LOGIN_LIMIT), statuses
    assert statuses[-len(targets) :] == [429] * len(targets)
    for reply in replies:
        if reply.status == 429:
            assert reply.headers["Content-Type"] == "application/problem+json"
            assert reply.json()["code"] == "too_many_requests"
            assert 1 <= int(reply.headers["Retry-After"]) <= 61  # the minute's window, rounded up
    other = new_address()
    assert stack.nginx.call("POST", LOGIN, credentials, ip=other).status == 200
    assert stack.c.call("POST", LOGIN, credentials, ip=other).status == 200
