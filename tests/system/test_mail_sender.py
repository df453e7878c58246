"""The outbox sender as it runs in production: its own process, stopped or killed mid-run and started
again. Stopped, it finishes the mail in hand; killed, it sends at most that one mail twice: at least
once, never lost (app/core/outbox.py)."""

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.core.extensions import db
from tests.support.app import DATABASES, ROOT, make_user, settings
from tests.support.kustomize import kustomize
from tests.support.loopback import mail_sender, migrate, stack_env, stop
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


def test_the_liveness_probe_passes_while_the_loop_runs_and_fails_once_it_stops(
    outbox_app: Flask, smtp_server: Callable[..., tuple[Inbox, int]], tmp_path: Path
) -> None:
    """The Kubernetes probe's own command: the heartbeat file the loop touches must be under five minutes old."""
    sender = next(
        obj
        for obj in kustomize(ROOT / "deploy" / "k8s" / "overlays" / "example")
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "mail-sender"
    )
    probe = sender["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]["command"]
    heartbeat = tmp_path / "mail-sender.alive"
    in_container = "/tmp/mail-sender.alive"  # noqa: S108 - the path inside the container's /tmp volume
    command = [part.replace(in_container, str(heartbeat)) for part in probe]
    assert command != probe

    def alive() -> bool:
        return subprocess.run(command, check=False, capture_output=True).returncode == 0

    assert not alive()  # no loop has run
    _inbox, port = smtp_server()
    env = {**sender_env(outbox_app, port, tmp_path), "TMPDIR": str(tmp_path)}
    with mail_sender(tmp_path / "sender.log", env) as process:
        wait_for(alive, "a heartbeat")
        assert stop(process) == 0
    assert alive()
    stale = time.time() - 301  # a loop that stopped touching it five minutes ago: hung
    os.utime(heartbeat, (stale, stale))
    assert not alive()
