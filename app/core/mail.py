"""Outgoing mail, by the backend MAIL_BACKEND names: console (the app log), smtp, or memory (tests).

send() puts a mail in the caller's unit of work, so it leaves exactly when the change that causes it
commits. For smtp that is a row of the outbox table, which `flask mail send-outbox` delivers with
retries (app/core/outbox.py); console and memory cannot fail, so they deliver right after the commit.
"""

import smtplib
import ssl
import uuid
from datetime import datetime
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from app.core.database import Model, UTCDateTime, utcnow
from app.core.extensions import db

INLINE_BACKENDS = ("console", "memory")


class OutboxMail(Model):
    """A mail waiting for the sender, written in the transaction of the change that causes it."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    to_address: Mapped[str] = mapped_column(String(320))
    # The whole message, tokens and all: emptied once it is sent or given up, so the table keeps no
    # working token longer than delivery takes.
    content: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, sent or failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))

    def mail(self) -> EmailMessage:
        """The stored message, parsed back."""
        return message_from_string(self.content or "", policy=policy.default)


def message(to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text mail from MAIL_FROM."""
    mail = EmailMessage()
    mail["From"] = current_app.config["MAIL_FROM"]
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain=current_app.config["MAIL_FROM"].rpartition("@")[2] or None)
    mail.set_content(body)
    return mail


def outbox(app: Flask) -> list[EmailMessage]:
    """The mails the memory backend kept for this app, oldest first."""
    kept: list[EmailMessage] = app.extensions.setdefault("mail_outbox", [])
    return kept


def send(mail: EmailMessage) -> None:
    """Send the mail when the session's transaction commits (call it before the commit); never if it rolls back."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config["MAIL_BACKEND"] in INLINE_BACKENDS:
        session = db.session()
        if session.get_transaction() is None:
            session.begin()  # so a rollback before any query still drops the mail (no connection yet)
        session.info.setdefault("mail_after_commit", []).append((app, mail))
        return
    db.session.add(OutboxMail(to_address=str(mail["To"]), content=mail.as_string()))


@event.listens_for(Session, "after_commit")
def _deliver_committed(session: Session) -> None:
    for app, mail in session.info.pop("mail_after_commit", ()):
        deliver(app, mail)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the whole transaction, not a savepoint within it
        session.info.pop("mail_after_commit", None)


def deliver(app: Flask, mail: EmailMessage) -> None:
    """Hand one mail to the configured backend now; an SMTP failure raises (OSError or SMTPException)."""
    config: dict[str, Any] = app.config
    backend = config["MAIL_BACKEND"]
    if backend == "memory":
        outbox(app).append(mail)
    elif backend == "console":
        headers = "".join(f"{name}: {mail[name]}\n" for name in ("From", "To", "Subject"))
        app.logger.info("mail (MAIL_BACKEND=console, not sent):\n%s\n%s", headers, mail.get_content())
    else:
        with smtplib.SMTP(config["MAIL_HOST"], config["MAIL_PORT"], timeout=config["MAIL_TIMEOUT"]) as smtp:
            if config["MAIL_USE_TLS"]:
                smtp.starttls(context=ssl.create_default_context())
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(mail)
