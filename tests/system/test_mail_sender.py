"""The outbox sender as it runs in production: its own process, stopped or killed mid-run and started
again. Stopped, it finishes the mail in hand; killed, it sends at most that one mail twice: at least
once, never lost (app/core/outbox.py)."""

import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.core.extensions import db
from tests.support.app import DATABASES, make_user, settings
from tests.support.loopback import mail_sender, migrate, stack_env
from tests.support.postgres import free_port
from tests.support.smtp import Inbox, send_outbox
from tests.support.stack import wait_for

MAILS = 15


@pytest.fixture
def outbox_app(new_database: Callable[[str], str]) -> Iterator[Flask]:
    """An app on a migrated database of its own (Postgres when the run has it) that mails over SMTP."""
    database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
    app = create_app(settings(DATABASE_URL=database, MAIL_BACKEND="smtp", MAIL_HOST="127.0.0.1"))
    yield app
    with app.app_context():
        db.engine.dispose()


def ask_for_resets(app: Flask, port: int) -> list[str]:
    """MAILS password resets asked for while nothing sends them; the addresses."""
    app.config["MAIL_PORT"] = port
    addresses = [make_user(app).email for _ in range(MAILS)]
    client = app.test_client()
    for address in addresses:
        assert client.post("/api/v1/auth/password-reset", json={"email": address}).status_code == 202
    return addresses


def sender_env(app: Flask, port: int, directory: Path) -> dict[str, str]:
    smtp = {"MAIL_BACKEND": "smtp", "MAIL_HOST": "127.0.0.1", "MAIL_PORT": str(port)}
    # One process, so per-process rate-limit counters pass the production guard (the sender counts nothing).
    return stack_env(app.config["DATABASE_URL"], free_port(), directory, WEB_CONCURRENCY="1", **smtp)


def stalled_inbox(smtp_server: Callable[..., tuple[Inbox, int]]) -> tuple[Inbox, int, threading.Event]:
    """An SMTP server that keeps the first mail and holds its answer until released."""
    inbox, port = smtp_server()
    inbox.stall = threading.Event()
    return inbox, port, inbox.stall


def deliver_the_rest(app: Flask, inbox: Inbox, addresses: list[str]) -> None:
    # Postgres frees a dead sender's row lock once it sees the connection gone; until then it is skipped.
    wait_for(lambda: bool(send_outbox(app) or True) and set(addresses) <= {m["To"] for m in inbox.mails}, "every mail")


def test_a_sender_stopped_mid_mail_finishes_it_and_the_next_one_sends_the_rest_once(
    outbox_app: Flask, smtp_server: Callable[..., tuple[Inbox, int]], tmp_path: Path
) -> None:
    inbox, port, release = stalled_inbox(smtp_server)
    addresses = ask_for_resets(outbox_app, port)
    with mail_sender(tmp_path / "sender.log", sender_env(outbox_app, port, tmp_path)) as sender:
        assert inbox.stalled.wait(30), (tmp_path / "sender.log").read_text()
        sender.send_signal(signal.SIGTERM)  # as compose or Kubernetes stop it
        inbox.stall = None
        release.set()
        assert sender.wait(30) == 0
    assert len(inbox.mails) == 1  # the mail in hand, finished; no other begun
    deliver_the_rest(outbox_app, inbox, addresses)
    assert Counter(m["To"] for m in inbox.mails) == Counter(addresses)  # each exactly once


def test_a_sender_killed_mid_mail_loses_nothing_and_repeats_at_most_that_mail(
    outbox_app: Flask, smtp_server: Callable[..., tuple[Inbox, int]], tmp_path: Path
) -> None:
    inbox, port, release = stalled_inbox(smtp_server)
    addresses = ask_for_resets(outbox_app, port)
    with mail_sender(tmp_path / "sender.log", sender_env(outbox_app, port, tmp_path)) as sender:
        assert inbox.stalled.wait(30), (tmp_path / "sender.log").read_text()
        sender.send_signal(signal.SIGKILL)  # the server has the mail; the sender never commits that it sent it
        assert sender.wait(30) == -signal.SIGKILL
    inbox.stall = None
    release.set()
    deliver_the_rest(outbox_app, inbox, addresses)
    counts = Counter(m["To"] for m in inbox.mails)
    assert set(counts) == set(addresses)
    assert sorted(counts.values()) == [1] * (MAILS - 1) + [2]  # only the mail in hand went twice
