"""The outbox sender, `flask mail send-outbox`: delivers the mails send() wrote, with retries and
exponential backoff, and tells /metrics how many wait.

Each mail is sent inside the transaction that locks its row (FOR UPDATE SKIP LOCKED on Postgres), so
several senders share the work without sending a mail twice. Delivery is at least once: a sender that
dies after the SMTP server took a mail but before its commit leaves that one mail to be sent again.
"""

import signal
import smtplib
import tempfile
import threading
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from types import FrameType

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from app.core.database import utcnow
from app.core.extensions import db
from app.core.mail import OutboxMail, deliver

STATUSES = ("pending", "sent", "failed")


def backoff(app: Flask, attempts: int) -> timedelta:
    """How long to wait after the given number of failed attempts: doubling, up to the cap."""
    seconds = app.config["MAIL_RETRY_SECONDS"] * 2 ** (attempts - 1)
    return timedelta(seconds=min(seconds, app.config["MAIL_RETRY_MAX_SECONDS"]))


def send_one(app: Flask) -> bool:
    """Deliver the oldest due mail no other sender holds and commit its fate; whether there was one."""
    now = utcnow()
    row = db.session.scalars(
        select(OutboxMail)
        .where(OutboxMail.status == "pending", OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        db.session.rollback()
        return False
    row.attempts += 1
    try:
        deliver(app, row.mail())
    except (OSError, smtplib.SMTPException) as e:
        row.last_error = f"{type(e).__name__}: {e}"[:500]
        if row.attempts >= app.config["MAIL_SEND_ATTEMPTS"]:
            row.status, row.content = "failed", None
            app.logger.error(
                "outbox mail %s to %s failed for good after %s attempts: %s",
                row.id,
                row.to_address,
                row.attempts,
                row.last_error,
            )
        else:
            row.next_attempt_at = utcnow() + backoff(app, row.attempts)
            app.logger.warning(
                "outbox mail %s to %s failed (attempt %s, next at %s): %s",
                row.id,
                row.to_address,
                row.attempts,
                row.next_attempt_at.isoformat(timespec="seconds"),
                row.last_error,
            )
    else:
        row.status, row.content, row.sent_at, row.last_error = "sent", None, utcnow(), None
    row.updated_at = utcnow()
    db.session.commit()
    return True


def send_due(app: Flask, stop: threading.Event | None = None) -> int:
    """Deliver every mail that is due now (until asked to stop); how many it tried."""
    tried = 0
    while not (stop and stop.is_set()) and send_one(app):
        tried += 1
        HEARTBEAT.touch()
    return tried


# Touched on every round of the loop: the Kubernetes liveness probe restarts a sender that stops touching it
# (a hang no timeout caught), as an HTTP probe would a web worker.
HEARTBEAT = Path(tempfile.gettempdir()) / "mail-sender.alive"


@click.group("mail")
def mail_cli() -> None:
    """The mail outbox."""


@mail_cli.command("send-outbox")
@click.option("--once", is_flag=True, help="Send what is due now, then exit (default: keep polling).")
@with_appcontext
def send_outbox(once: bool) -> None:
    """Deliver the outbox's mails over SMTP, retrying with backoff; stops cleanly on SIGTERM or SIGINT."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()

    def finish(signum: int, _frame: FrameType | None) -> None:
        stop.set()  # the mail in hand is finished and committed first

    if not once:
        signal.signal(signal.SIGTERM, finish)
        signal.signal(signal.SIGINT, finish)
        app.logger.info("mail sender started (MAIL_BACKEND=%s)", app.config["MAIL_BACKEND"])
    while not stop.is_set():
        try:
            tried = send_due(app, stop)
        except SQLAlchemyError:
            # The database went away: keep the process and try again, as the web workers do.
            app.logger.exception("mail sender cannot reach the database")
            db.session.rollback()
            tried = 0
        finally:
            db.session.remove()
        HEARTBEAT.touch()
        if once:
            break
        if not tried:
            stop.wait(app.config["MAIL_POLL_SECONDS"])


@mail_cli.command("purge")
@click.option("--days", default=30, show_default=True, help="Keep sent mails younger than this.")
@with_appcontext
def purge(days: int) -> None:
    """Delete sent mails older than --days (pending and failed ones stay); cron it."""
    deleted = db.session.execute(
        delete(OutboxMail).where(OutboxMail.status == "sent", OutboxMail.sent_at < utcnow() - timedelta(days=days))
    )
    db.session.commit()
    click.echo(f"deleted {deleted.rowcount} sent mail(s) older than {days} days")  # type: ignore[attr-defined]


class BacklogCollector(Collector):
    """The outbox's rows by status and the age of the oldest pending one, read at scrape time."""

    def __init__(self, counts: dict[str, int], oldest_seconds: float) -> None:
        self.counts, self.oldest_seconds = counts, oldest_seconds

    def collect(self) -> Iterable[Metric]:
        rows = GaugeMetricFamily("mail_outbox", "Mails in the outbox, by status", labels=["status"])
        for status in STATUSES:
            rows.add_metric([status], self.counts.get(status, 0))
        yield rows
        yield GaugeMetricFamily(
            "mail_outbox_oldest_pending_seconds", "Age of the oldest mail waiting to be sent", value=self.oldest_seconds
        )


def backlog_registry() -> CollectorRegistry:
    """A registry with the outbox figures; empty when the database cannot say (the scrape still answers)."""
    registry = CollectorRegistry()
    try:
        with db.engine.connect() as connection:
            found = connection.execute(
                select(OutboxMail.status, func.count(), func.min(OutboxMail.created_at)).group_by(OutboxMail.status)
            ).all()
    except SQLAlchemyError:
        current_app.logger.warning("mail outbox figures unavailable", exc_info=True)
        return registry
    counts = {status: count for status, count, _ in found}
    oldest = next((first for status, _, first in found if status == "pending"), None)
    age = (utcnow() - oldest).total_seconds() if oldest else 0.0
    registry.register(BacklogCollector(counts, max(age, 0.0)))
    return registry


def init_app(app: Flask) -> None:
    app.cli.add_command(mail_cli)
