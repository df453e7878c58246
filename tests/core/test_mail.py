"""Mail backends: console writes to the log, smtp talks to a real SMTP server, memory keeps mail for tests."""

import logging
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask

from app import create_app
from app.core.config import ConfigError
from app.core.mail import message, send
from tests.support.app import PASSWORD, assert_problem, mailed_token, make_user, production, settings
from tests.support.postgres import free_port


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.mails.append(message_from_bytes(envelope.content, policy=policy.default))
        self.arrived.set()
        return "250 OK"

    def wait(self) -> EmailMessage:
        assert self.arrived.wait(10), "no mail arrived"
        return self.mails[-1]


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Inbox, int]]]:
    """start(**aiosmtpd options) -> (inbox, port) of an SMTP server on loopback, stopped afterwards."""
    controllers: list[Controller] = []

    def start(**options: Any) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


def smtp_app(database_app: Flask, port: int, **overrides: Any) -> Flask:
    smtp = {"MAIL_BACKEND": "smtp", "MAIL_HOST": "127.0.0.1", "MAIL_PORT": port}
    return create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], **smtp, **overrides))


def test_smtp_delivers_a_reset_mail_whose_token_works(
    database_app: Flask, app: Flask, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    client = smtp_app(database_app, port, MAIL_FROM="accounts@example.com").test_client()
    user = make_user(app)

    assert client.post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    mail = inbox.wait()
    assert inbox.envelopes == [("accounts@example.com", [user.email])]
    assert (mail["From"], mail["To"], mail["Subject"]) == ("accounts@example.com", user.email, "Reset your password")
    assert mail["Date"] and mail["Message-ID"].endswith("@example.com>")

    new_password = "a brand new and rather long passphrase"
    confirm = {"token": mailed_token(mail), "new_password": new_password}
    assert client.post("/api/v1/auth/password-reset/confirm", json=confirm).status_code == 204
    assert client.post("/api/v1/auth/login", json={"email": user.email, "password": new_password}).status_code == 200


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the server's warning, on purpose
def test_smtp_logs_in_with_the_configured_credentials(
    database_app: Flask, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret")

    inbox, port = smtp_server(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    app = smtp_app(database_app, port, MAIL_USERNAME="mailer", MAIL_PASSWORD="s3cret")
    with app.app_context():
        future = send(message("ada@example.com", "Hello", "Hi Ada."))
    assert future is not None
    future.result(timeout=10)
    assert inbox.wait().get_content().strip() == "Hi Ada."
    assert logins == [(b"mailer", b"s3cret")]


def test_smtp_upgrades_to_tls_and_checks_the_certificate(
    database_app: Flask, smtp_server: Callable[..., tuple[Inbox, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    inbox, port = smtp_server(tls_context=tls, require_starttls=True)
    app = smtp_app(database_app, port, MAIL_USE_TLS=True)

    with app.app_context():
        untrusted = send(message("ada@example.com", "Hello", "Hi Ada."))
    assert untrusted is not None
    untrusted.result(timeout=10)  # our own CA is not trusted yet: refused, logged, nothing sent
    assert inbox.mails == []

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now trust the test certificate
    with app.app_context():
        trusted = send(message("ada@example.com", "Hello", "Hi Ada."))
    assert trusted is not None
    trusted.result(timeout=10)
    assert inbox.wait()["To"] == "ada@example.com"


def test_an_smtp_failure_is_logged_and_the_request_still_answers(
    database_app: Flask, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    smtp = smtp_app(database_app, free_port(), MAIL_TIMEOUT=2)  # nothing listens there
    user = make_user(app)
    with caplog.at_level(logging.ERROR):
        response = smtp.test_client().post("/api/v1/auth/password-reset", json={"email": user.email})
        assert response.status_code == 202
        with smtp.app_context():
            assert send(message(user.email, "x", "y")).result(timeout=10) is None  # type: ignore[union-attr]
    assert f"mail to {user.email} failed" in caplog.text


def test_console_writes_the_mail_to_the_app_log(
    database_app: Flask, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    console = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], MAIL_BACKEND="console"))
    user = make_user(app)
    with caplog.at_level(logging.INFO):
        assert console.test_client().post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    assert "MAIL_BACKEND=console, not sent" in caplog.text
    assert f"To: {user.email}" in caplog.text and "Reset your password" in caplog.text
    assert "/api/v1/auth/password-reset/confirm" in caplog.text


def test_memory_keeps_the_mail(client: Any, outbox: list[EmailMessage]) -> None:
    body = {"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    assert [m["To"] for m in outbox] == ["ada@example.com"]


def test_an_unknown_backend_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="CFG002 MAIL_BACKEND"):
        create_app(settings(MAIL_BACKEND="carrier-pigeon"))


def test_production_warns_that_memory_mail_is_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    """memory keeps mail in the process, where nobody reads it (console is refused: tests/core/test_config.py)."""
    with caplog.at_level(logging.WARNING):
        create_app(production(MAIL_BACKEND="memory"))
    assert "MAIL_BACKEND=memory sends no mail" in caplog.text


def test_a_bad_token_is_a_problem_not_a_crash(client: Any) -> None:
    assert_problem(client.post("/api/v1/auth/verify-email", json={"token": "\x00"}), 422, "validation_failed")
