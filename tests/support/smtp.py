"""An SMTP server on loopback (aiosmtpd) that keeps what it receives, and can refuse or stall on demand."""

import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from flask import Flask

from app import create_app
from tests.support.app import settings


class Inbox:
    """An aiosmtpd handler that keeps what it receives; `refuse` answers 451 instead, `stall` holds the
    answer to DATA (after keeping the mail) until released."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.arrived = threading.Event()
        self.refuse = False
        self.stall: threading.Event | None = None
        self.stalled = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 Try again later"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.mails.append(message_from_bytes(envelope.content, policy=policy.default))
        self.arrived.set()
        if self.stall is not None:
            self.stalled.set()
            self.stall.wait(30)  # blocks the server's loop: the sender waits for an answer that does not come
        return "250 OK"

    def wait(self) -> EmailMessage:
        assert self.arrived.wait(10), "no mail arrived"
        return self.mails[-1]

    def to(self, address: str) -> list[EmailMessage]:
        return [mail for mail in self.mails if mail["To"] == address]


def smtp_app(database_app: Flask, port: int, **overrides: Any) -> Flask:
    """A test app on the session database that sends mail over SMTP to 127.0.0.1:port, through the outbox."""
    smtp = {"MAIL_BACKEND": "smtp", "MAIL_HOST": "127.0.0.1", "MAIL_PORT": port, "MAIL_TIMEOUT": 5}
    return create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], **{**smtp, **overrides}))


def send_outbox(app: Flask) -> str:
    """Run `flask mail send-outbox --once` for the app; its output."""
    result = app.test_cli_runner().invoke(args=["mail", "send-outbox", "--once"])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output
