"""Mail backends: console writes to the log, smtp talks to a real SMTP server, memory keeps mail for tests."""

import logging
import shutil
import ssl
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask

from app import create_app
from app.core.config import ConfigError
from app.core.mail import deliver, message
from tests.support.app import PASSWORD, assert_problem, mailed_token, make_user, production, settings
from tests.support.smtp import Inbox, send_outbox, smtp_app


def test_smtp_delivers_a_reset_mail_whose_token_works(
    database_app: Flask, app: Flask, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    client = smtp_app(database_app, port, MAIL_FROM="accounts@example.com").test_client()
    user = make_user(app)

    assert client.post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    send_outbox(client.application)
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
        deliver(app, message("ada@example.com", "Hello", "Hi Ada."))
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

    with app.app_context(), pytest.raises(ssl.SSLCertVerificationError):
        deliver(app, message("ada@example.com", "Hello", "Hi Ada."))  # our own CA is not trusted yet
    assert inbox.mails == []

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now trust the test certificate
    with app.app_context():
        deliver(app, message("ada@example.com", "Hello", "Hi Ada."))
    assert inbox.wait()["To"] == "ada@example.com"


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
