"""The mail outbox: a mail is a row written with the change that causes it, and `flask mail send-outbox`
delivers it over SMTP with retries, once, whatever the server did meanwhile. (The sender killed mid-run:
tests/system/test_mail_sender.py.)"""

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import pytest
from flask import Flask
from sqlalchemy import select, update

from app import create_app
from app.accounts.tokens import password_reset_mail
from app.core.database import utcnow
from app.core.extensions import db
from app.core.mail import OutboxMail, message, send
from app.core.outbox import send_due
from tests.support.app import mailed_token, make_user, settings
from tests.support.live import migrated_app
from tests.support.postgres import free_port
from tests.support.smtp import Inbox, send_outbox, smtp_app

NEW_PASSWORD = "a brand new and rather long passphrase"


def rows(app: Flask) -> list[OutboxMail]:
    with app.app_context():
        found = list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.created_at)))
        db.session.expunge_all()
        return found


def make_due(app: Flask) -> None:
    """Bring every waiting retry to now, as if its backoff had passed."""
    with app.app_context():
        db.session.execute(update(OutboxMail).where(OutboxMail.status == "pending").values(next_attempt_at=utcnow()))
        db.session.commit()


def test_a_reset_asked_while_smtp_refuses_is_sent_once_when_it_recovers(
    database_app: Flask, app: Flask, smtp_server: Callable[..., tuple[Inbox, int]], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp_server()
    inbox.refuse = True
    smtp = smtp_app(database_app, port)
    client = smtp.test_client()
    user = make_user(app)

    assert client.post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    with caplog.at_level(logging.WARNING):
        send_outbox(smtp)
    assert inbox.mails == []
    [kept] = rows(app)
    assert (kept.status, kept.attempts, kept.to_address) == ("pending", 1, user.email)
    assert "451" in caplog.text and str(kept.id) in caplog.text

    inbox.refuse = False
    send_outbox(smtp)
    assert inbox.mails == []  # not yet: the retry waits for its backoff
    make_due(app)
    send_outbox(smtp)
    make_due(app)
    send_outbox(smtp)  # nothing left to send: no second copy
    assert [mail["To"] for mail in inbox.mails] == [user.email]
    assert [(row.status, row.attempts) for row in rows(app)] == [("sent", 2)]

    confirm = {"token": mailed_token(inbox.mails[0]), "new_password": NEW_PASSWORD}
    assert client.post("/api/v1/auth/password-reset/confirm", json=confirm).status_code == 204
    assert client.post("/api/v1/auth/login", json={"email": user.email, "password": NEW_PASSWORD}).status_code == 200


def test_every_mail_asked_for_while_smtp_is_down_arrives_exactly_once(
    database_app: Flask, app: Flask, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    inbox.refuse = True
    smtp = smtp_app(database_app, port)
    users = [make_user(app) for _ in range(15)]
    for user in users:
        assert smtp.test_client().post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    send_outbox(smtp)
    inbox.refuse = False
    for _ in range(3):
        make_due(app)
        send_outbox(smtp)
    assert sorted(mail["To"] for mail in inbox.mails) == sorted(user.email for user in users)


def test_smtp_down_logs_each_failure_and_gives_up_after_the_last_attempt(
    database_app: Flask, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    smtp = smtp_app(database_app, free_port(), MAIL_SEND_ATTEMPTS=3)  # nothing listens there
    user = make_user(app)
    assert smtp.test_client().post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    with caplog.at_level(logging.WARNING):
        for _ in range(4):
            send_outbox(smtp)
            make_due(app)
    failures = [r for r in caplog.records if r.name == smtp.logger.name and "outbox mail" in r.getMessage()]
    assert [r.levelname for r in failures] == ["WARNING", "WARNING", "ERROR"]
    [kept] = rows(app)
    assert (kept.status, kept.attempts) == ("failed", 3)
    assert kept.content is None  # the token it carried is not kept once nobody will send it
    assert kept.last_error


def test_each_retry_waits_twice_as_long_as_the_one_before(
    database_app: Flask, app: Flask, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    inbox.refuse = True
    smtp = smtp_app(database_app, port, MAIL_RETRY_SECONDS=60, MAIL_RETRY_MAX_SECONDS=200)
    with smtp.app_context():
        send(message("ada@example.com", "Hello", "Hi Ada."))
        db.session.commit()
    waits = []
    for _ in range(4):
        send_outbox(smtp)
        [kept] = rows(app)
        waits.append(round((kept.next_attempt_at - kept.updated_at).total_seconds()))
        make_due(app)
    assert waits == [60, 120, 200, 200]


def test_a_rolled_back_change_leaves_no_outbox_row_and_sends_nothing(
    database_app: Flask, app: Flask, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    smtp = smtp_app(database_app, port)
    user = make_user(app)
    with smtp.test_request_context(method="POST"):
        send(password_reset_mail(user.email, user) or message(user.email, "x", "y"))
        db.session.flush()  # written, then the change fails before it commits
        db.session.rollback()
    send_outbox(smtp)
    assert rows(app) == [] and inbox.mails == []


def test_a_rolled_back_change_sends_nothing_in_development(app: Flask, outbox: list[EmailMessage]) -> None:
    """MAIL_BACKEND=memory or console delivers right after the commit, in the web process, and only then."""
    with app.app_context():
        send(message("ada@example.com", "Hello", "Hi Ada."))
        assert outbox == []
        db.session.rollback()
        db.session.commit()
        assert outbox == []
        send(message("ada@example.com", "Hello", "Hi again."))
        db.session.commit()
    assert [mail.get_content().strip() for mail in outbox] == ["Hi again."]
    assert rows(app) == []


def test_a_sent_mail_leaves_no_token_in_the_database(
    database_app: Flask, app: Flask, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    smtp = smtp_app(database_app, port)
    user = make_user(app)
    smtp.test_client().post("/api/v1/auth/password-reset", json={"email": user.email})
    assert mailed_token_in(rows(app)[0].content)
    send_outbox(smtp)
    token = mailed_token(inbox.wait())
    [sent] = rows(app)
    assert sent.status == "sent" and sent.content is None and token not in repr(sent.__dict__)


def mailed_token_in(content: str | None) -> bool:
    return content is not None and "password-reset/confirm" in content


def test_two_senders_at_once_deliver_each_mail_once(
    new_database: Callable[[str], str], smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    """On Postgres, where row locks let senders share the work (on SQLite one sender runs)."""
    inbox, port = smtp_server()
    with migrated_app(new_database("postgres")) as postgres:
        smtp = smtp_app(postgres, port)
        deliver_each_once_with_four_senders(smtp, inbox)


def deliver_each_once_with_four_senders(smtp: Flask, inbox: Inbox) -> None:
    addresses = [f"u{i}@example.com" for i in range(40)]
    with smtp.app_context():
        for address in addresses:
            send(message(address, "Hello", "Hi."))
        db.session.commit()
    barrier = threading.Barrier(4)
    sent: list[int] = []

    def sender() -> None:
        with smtp.app_context():
            barrier.wait()
            sent.append(send_due(smtp))
            db.session.remove()

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(mail["To"] for mail in inbox.mails) == sorted(addresses)
    assert sum(sent) == 40 and len([n for n in sent if n]) > 1, sent  # they shared the work


def test_the_backlog_is_a_metric(
    database_app: Flask, app: Flask, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    inbox.refuse = True
    smtp = smtp_app(database_app, port, MAIL_SEND_ATTEMPTS=1)
    client = smtp.test_client()
    with smtp.app_context():
        for address in ("a@example.com", "b@example.com"):
            send(message(address, "Hello", "Hi."))
        db.session.commit()
        db.session.execute(update(OutboxMail).values(created_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mail_outbox{status="pending"} 2.0' in text
    assert 'mail_outbox{status="failed"} 0.0' in text
    oldest = next(line for line in text.splitlines() if line.startswith("mail_outbox_oldest_pending_seconds "))
    assert 290 < float(oldest.split()[1]) < 600

    send_outbox(smtp)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mail_outbox{status="pending"} 0.0' in text and 'mail_outbox{status="failed"} 2.0' in text
    assert "mail_outbox_oldest_pending_seconds 0.0" in text


def test_the_sender_outlives_a_database_it_cannot_reach(caplog: pytest.LogCaptureFixture) -> None:
    """It logs the outage and carries on (the loop tries again after MAIL_POLL_SECONDS), never crashes."""
    gone = f"postgresql://app@127.0.0.1:{free_port()}/app"  # nothing listens there
    sender = create_app(settings(DATABASE_URL=gone, MAIL_BACKEND="smtp", DB_CONNECT_TIMEOUT=1))
    with caplog.at_level(logging.ERROR):
        send_outbox(sender)
    assert "mail sender cannot reach the database" in caplog.text


def test_purge_deletes_sent_mails_older_than_asked_and_keeps_the_rest(app: Flask) -> None:
    with app.app_context():
        old, recent, waiting = (OutboxMail(to_address=f"{n}@example.com", content="x") for n in "abc")
        old.status, old.sent_at = "sent", utcnow() - timedelta(days=31)
        recent.status, recent.sent_at = "sent", utcnow() - timedelta(days=1)
        waiting.created_at = utcnow() - timedelta(days=40)
        db.session.add_all([old, recent, waiting])
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["mail", "purge", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "1 sent mail" in result.output
    assert sorted(row.to_address for row in rows(app)) == ["b@example.com", "c@example.com"]
