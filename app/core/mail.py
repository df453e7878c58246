"""Outgoing mail, by the backend MAIL_BACKEND names: console (the app log), smtp, or memory (tests)."""

import smtplib
import ssl
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import cache
from typing import Any

from flask import Flask, current_app


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


def send(mail: EmailMessage) -> Future[None] | None:
    """Hand a mail to the configured backend; SMTP delivery happens in the background."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    backend = app.config["MAIL_BACKEND"]
    if backend == "memory":
        outbox(app).append(mail)
        return None
    if backend == "console":
        headers = "".join(f"{name}: {mail[name]}\n" for name in ("From", "To", "Subject"))
        app.logger.info("mail (MAIL_BACKEND=console, not sent):\n%s\n%s", headers, mail.get_content())
        return None
    # In the background, so a request answers as fast whether or not it sent mail (a password
    # reset must not reveal by its timing that an account exists) and a slow server blocks no one.
    return _worker().submit(deliver, app, mail)


@cache
def _worker() -> ThreadPoolExecutor:
    # Made on first use, so each gunicorn worker process gets its own thread.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail")


def deliver(app: Flask, mail: EmailMessage) -> None:
    """Send one mail over SMTP now; a failure is logged, since no caller is waiting for it."""
    config: dict[str, Any] = app.config
    try:
        with smtplib.SMTP(config["MAIL_HOST"], config["MAIL_PORT"], timeout=config["MAIL_TIMEOUT"]) as smtp:
            if config["MAIL_USE_TLS"]:
                smtp.starttls(context=ssl.create_default_context())
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException):
        app.logger.exception("mail to %s failed (SMTP %s:%s)", mail["To"], config["MAIL_HOST"], config["MAIL_PORT"])
