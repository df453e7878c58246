"""Account changes racing each other under gunicorn on Postgres: four worker processes, requests
released together, many rounds. Whatever the interleaving, one active admin always remains, and no
session made with an old password outlives the reset or change that replaced it, and a client
refreshing twice at once keeps its session.

Mail goes through the outbox and `flask mail send-outbox` over SMTP to a server in this process
(aiosmtpd), as the app sends it in production, so the reset tokens are the ones the app mailed.
Every process is stopped by its PID.
"""

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import partial
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller

from tests.support.app import DATABASES, PASSWORD
from tests.support.loopback import Gunicorn, Redis, gunicorn, mail_sender, migrate, sql
from tests.support.postgres import free_port
from tests.support.stack import Reply

pytestmark = pytest.mark.timeout(300)

ROUNDS = 20
LOGINS = 6  # logins with the old password racing each change
NEW_PASSWORD = "a brand new and rather long passphrase"


class Inbox:
    """An aiosmtpd handler that keeps the mails it receives, by recipient."""

    def __init__(self) -> None:
        self.mails: dict[str, list[EmailMessage]] = {}
        self.changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = cast(EmailMessage, message_from_bytes(envelope.content, policy=policy.default))
        with self.changed:
            for to in envelope.rcpt_tos:
                self.mails.setdefault(to, []).append(mail)
            self.changed.notify_all()
        return "250 OK"

    def token(self, to: str, subject: str) -> str:
        """The token of the latest mail to `to` with this subject, waiting for it to arrive."""
        with self.changed:
            found = self.changed.wait_for(lambda: any(m["Subject"] == subject for m in self.mails.get(to, [])), 10)
            assert found, f"no mail {subject!r} to {to}"
            mail = [m for m in self.mails[to] if m["Subject"] == subject][-1]
        token = re.search(r"^    (\S+)\r?$", mail.get_content(), re.MULTILINE)
        assert token, mail.get_content()
        return token.group(1)


@dataclass
class Stack:
    server: Gunicorn
    database: str
    inbox: Inbox

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        return self.server.request(method, path, body, token)

    def account(self, role: str = "user") -> dict[str, Any]:
        """A new account of this role, logged in: its id, email and token pair."""
        account = self.server.register(f"race-{uuid.uuid4().hex[:12]}@example.com")
        if role != "user":
            sql(self.database, "UPDATE users SET role = %s WHERE id = %s", role, account["id"])
        return account


@pytest.fixture(scope="module")
def stack(new_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("races")
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    redis = Redis(directory / "redis")  # several workers: production wants shared rate-limit counters
    controller.start()
    try:
        redis.start()
        database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
        settings = {"MAIL_BACKEND": "smtp", "MAIL_HOST": "127.0.0.1", "MAIL_PORT": str(port)}
        settings.update(RATELIMIT_STORAGE_URI=redis.url, WEB_CONCURRENCY="4")
        with (
            gunicorn(directory / "app", database, **settings) as server,
            mail_sender(directory / "sender.log", server.env),
        ):
            yield Stack(server, database, inbox)
    finally:
        redis.stop()
        controller.stop()


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Make the calls from threads of their own, released together; what each returned."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def active_admins(stack: Stack) -> int:
    return int(sql(stack.database, "SELECT count(*) FROM users WHERE role = 'admin' AND is_active")[0][0])


def demotion(stack: Stack, me: dict[str, Any], other: dict[str, Any]) -> Callable[[], int]:
    return lambda: stack.call("PATCH", f"/api/v1/users/{other['id']}", {"role": "user"}, me["access_token"]).status


def test_two_admins_demoting_each_other_at_once_leave_one(stack: Stack) -> None:
    rounds = []
    for _ in range(ROUNDS):
        sql(stack.database, "UPDATE users SET role = 'user' WHERE role = 'admin'")
        a, b = stack.account("admin"), stack.account("admin")
        statuses = sorted(at_once([demotion(stack, a, b), demotion(stack, b, a)]))
        rounds.append((statuses, active_admins(stack)))
    # One demotion goes through; the other is 409 last_admin, or 404 when its caller was no longer an admin.
    assert [admins for _, admins in rounds] == [1] * ROUNDS, rounds
    assert all(statuses[0] == 200 and statuses[1] in (404, 409) for statuses, _ in rounds), rounds


def password_change(stack: Stack, kind: str, account: dict[str, Any]) -> Callable[[], int]:
    """A reset with the mailed token, or a change with the current password, ready to send."""
    if kind == "reset":
        assert stack.call("POST", "/api/v1/auth/password-reset", {"email": account["email"]}).status == 202
        body = {"token": stack.inbox.token(account["email"], "Reset your password"), "new_password": NEW_PASSWORD}
        return lambda: stack.call("POST", "/api/v1/auth/password-reset/confirm", body).status
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    return lambda: stack.call("POST", "/api/v1/users/me/password", body, account["access_token"]).status


def old_password_login(stack: Stack, account: dict[str, Any]) -> Callable[[], Reply]:
    return lambda: stack.call("POST", "/api/v1/auth/login", {"email": account["email"], "password": PASSWORD})


def still_works(stack: Stack, tokens: dict[str, Any]) -> bool:
    return (
        stack.call("GET", "/api/v1/users/me", token=tokens["access_token"]).status == 200
        or stack.call("POST", "/api/v1/auth/refresh", token=tokens["refresh_token"]).status == 200
    )


@pytest.mark.parametrize("kind", ["reset", "change"])
def test_no_session_made_with_the_old_password_outlives_a_change_racing_it(stack: Stack, kind: str) -> None:
    rounds = []
    for _ in range(ROUNDS // 2):
        account = stack.account()
        change = password_change(stack, kind, account)
        *logins, changed = at_once([old_password_login(stack, account)] * LOGINS + [change])
        assert changed == 204
        made = [reply.json() for reply in logins if reply.status == 200]
        rounds.append((len(made), sum(still_works(stack, tokens) for tokens in made)))
    # (logins with the old password that got in, sessions of theirs still working once the change is done)
    assert [working for _, working in rounds] == [0] * len(rounds), rounds
    assert sum(made for made, _ in rounds) > 0, rounds  # the old password did get logins in: they raced


def refresh(stack: Stack, token: str) -> Callable[[], Reply]:
    return lambda: stack.call("POST", "/api/v1/auth/refresh", token=token)


def test_two_refreshes_of_one_token_at_once_keep_the_session(stack: Stack) -> None:
    """Two tabs, or a retry: two workers rotate one refresh token at the same moment. Both answers are
    pairs of the same session, and each goes on working."""
    rounds = []
    for _ in range(ROUNDS):
        account = stack.account()
        first, second = at_once([refresh(stack, account["refresh_token"])] * 2)
        pairs = [reply.json() for reply in (first, second) if reply.status == 200]
        rounds.append(
            (first.status, second.status, sum(refresh(stack, pair["refresh_token"])().status == 200 for pair in pairs))
        )
    assert rounds == [(200, 200, 2)] * ROUNDS, rounds


def test_an_admin_delete_racing_the_users_login_and_email_change_never_fails_them(stack: Stack) -> None:
    """The admin's DELETE, the user's login and the user's email change, released together: each gets an
    answer its operation documents (the login and the change may find the account gone), never a 500."""
    admin = stack.account("admin")
    rounds = []
    for _ in range(ROUNDS):
        user = stack.account()
        new_email = {"email": f"moved-{uuid.uuid4().hex[:12]}@example.com", "current_password": PASSWORD}
        deletion = partial(stack.call, "DELETE", f"/api/v1/users/{user['id']}", token=admin["access_token"])
        change = partial(stack.call, "PATCH", "/api/v1/users/me", new_email, user["access_token"])
        deleted, logged_in, changed = at_once([deletion, old_password_login(stack, user), change])
        rounds.append((deleted.status, logged_in.status, changed.status))
        for reply in (deleted, logged_in, changed):
            if reply.status >= 400:
                assert reply.headers.get("Content-Type") == "application/problem+json", reply.body
    assert all(deleted == 204 for deleted, _, _ in rounds), rounds
    assert all(login in (200, 401) for _, login, _ in rounds), rounds
    # Gone before the change looked (401: the token's user no longer exists), or deleted after it (200).
    assert all(change in (200, 401, 404) for _, _, change in rounds), rounds
