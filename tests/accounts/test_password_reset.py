"""Password reset by mail: no enumeration, single-use short-lived tokens, every session ends."""

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app import create_app
from app.accounts.models import AccountToken
from app.core.database import utcnow
from app.core.extensions import db
from tests.support.app import PASSWORD, Account, assert_problem, bearer, login, mailed_token, make_user, settings

RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"
NEW_PASSWORD = "a brand new and rather long passphrase"


def request_reset(client: FlaskClient, email: str, **kwargs: Any) -> Any:
    return client.post(RESET, json={"email": email}, **kwargs)


def reset_token(client: FlaskClient, outbox: list[EmailMessage], email: str) -> str:
    assert request_reset(client, email).status_code == 202
    return mailed_token(outbox[-1])


def confirm(client: FlaskClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return client.post(CONFIRM, json={"token": token, "new_password": password})


def test_known_and_unknown_addresses_get_the_same_answer(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    known = request_reset(client, user.email.upper())
    unknown = request_reset(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.headers["Content-Type"] == unknown.headers["Content-Type"]

    def without_request_id(response: Any) -> dict[str, Any]:
        return {key: value for key, value in response.get_json().items() if key != "request_id"}

    assert without_request_id(known) == without_request_id(unknown)
    assert [m["To"] for m in outbox] == [user.email]  # only the real account gets mail


def test_the_mail_carries_a_token_whose_hash_alone_is_stored(
    client: FlaskClient, app: Flask, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    mail = outbox[-1]
    assert mail["Subject"] == "Reset your password"
    assert "30 minutes" in mail.get_content()
    with app.app_context():
        stored = db.session.scalars(select(AccountToken.token_hash)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


def test_a_reset_sets_the_new_password_and_ends_every_session(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    old_tokens = dict(user.tokens)
    token = reset_token(client, outbox, user.email)

    response = confirm(client, token)
    assert response.status_code == 204 and response.get_data() == b""
    assert_problem(client.get(ME, headers=bearer(old_tokens["access_token"])), 401)
    assert_problem(client.post(REFRESH, headers=bearer(old_tokens["refresh_token"])), 401)
    assert_problem(login(client, user.email, PASSWORD), 401, "invalid_credentials")
    assert login(client, user.email, NEW_PASSWORD).status_code == 200


def test_a_token_works_once(client: FlaskClient, user: Account, outbox: list[EmailMessage]) -> None:
    token = reset_token(client, outbox, user.email)
    assert confirm(client, token).status_code == 204
    assert_problem(confirm(client, token, "yet another long passphrase here"), 400, "token_used")
    assert login(client, user.email, NEW_PASSWORD).status_code == 200


def test_two_racing_confirmations_spend_a_token_once(
    client: FlaskClient, app: Flask, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    barrier = threading.Barrier(2)

    def use(password: str) -> int:
        barrier.wait()
        return confirm(app.test_client(), token, password).status_code

    passwords = ["the first racer's long passphrase", "the second racer's long passphrase"]
    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(use, passwords))
    assert sorted(statuses) == [204, 400]
    winner = passwords[statuses.index(204)]
    assert login(client, user.email, winner).status_code == 200


def test_an_expired_token_is_refused(
    client: FlaskClient, app: Flask, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    with app.app_context():
        db.session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert_problem(confirm(client, token), 400, "token_expired")
    assert login(client, user.email, PASSWORD).status_code == 200


def test_the_lifetime_comes_from_the_setting(database_app: Flask, app: Flask) -> None:
    short = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], PASSWORD_RESET_MINUTES=0))
    client = short.test_client()
    user = make_user(app)
    assert request_reset(client, user.email).status_code == 202
    token = mailed_token(short.extensions["mail_outbox"][-1])
    assert_problem(confirm(client, token), 400, "token_expired")  # zero minutes: expired on arrival


@pytest.mark.parametrize("token", ["not-a-token", "x" * 128])
def test_an_unknown_token_is_refused(client: FlaskClient, token: str) -> None:
    body = assert_problem(confirm(client, token), 400, "token_invalid")
    assert "token" in body["detail"]


def test_a_password_change_spends_the_outstanding_reset_tokens(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post(f"{ME}/password", headers=user.headers, json=change).status_code == 204
    assert_problem(confirm(client, token, "an attacker's own long passphrase"), 400, "token_used")
    assert login(client, user.email, NEW_PASSWORD).status_code == 200


def test_a_reset_spends_the_other_reset_tokens_too(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    first, second = reset_token(client, outbox, user.email), reset_token(client, outbox, user.email)
    assert confirm(client, second).status_code == 204
    assert_problem(confirm(client, first, "yet another long passphrase here"), 400, "token_used")


def test_an_email_change_voids_the_tokens_sent_to_the_old_address(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    change = {"email": "moved@example.com", "current_password": PASSWORD}
    assert client.patch(ME, headers=user.headers, json=change).status_code == 200
    confirmation = next(mail for mail in outbox if mail["To"] == "moved@example.com")
    assert client.post("/api/v1/auth/verify-email", json={"token": mailed_token(confirmation)}).status_code == 204
    assert_problem(confirm(client, token), 400, "token_invalid")


def move(client: FlaskClient, user: Account, outbox: list[EmailMessage], email: str) -> None:
    """Change the account's address to `email`, confirmed from there."""
    change = {"email": email, "current_password": user.password}
    assert client.patch(ME, headers=user.headers, json=change).status_code == 200
    confirmation = next(mail for mail in reversed(outbox) if mail["To"] == email)
    assert client.post("/api/v1/auth/verify-email", json={"token": mailed_token(confirmation)}).status_code == 204


def test_a_token_stays_void_when_the_address_comes_back(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    move(client, user, outbox, "elsewhere@example.com")
    move(client, user, outbox, user.email)  # and back: the token's address is the account's again
    assert_problem(confirm(client, token), 400, "token_used")
    assert login(client, user.email, PASSWORD).status_code == 200


def test_a_token_stays_void_when_a_disabled_account_is_enabled_again(
    client: FlaskClient, admin: Account, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    for active in (False, True):
        response = client.patch(f"/api/v1/users/{user.id}", headers=admin.headers, json={"is_active": active})
        assert response.status_code == 200
    assert_problem(confirm(client, token), 400, "token_used")
    assert login(client, user.email, PASSWORD).status_code == 200


def test_a_verification_token_is_not_a_reset_token(client: FlaskClient, outbox: list[EmailMessage]) -> None:
    body = {"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    assert_problem(confirm(client, mailed_token(outbox[-1])), 400, "token_invalid")


def test_the_new_password_follows_the_password_rules(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    local_part = user.email.partition("@")[0]
    body = assert_problem(confirm(client, token, f"my name is {local_part} and that is long"), 422)
    assert list(body["errors"]) == ["new_password"]
    assert_problem(confirm(client, token, "short"), 422)
    assert confirm(client, token).status_code == 204  # a refused password does not spend the token


def test_a_disabled_account_gets_no_mail_and_its_tokens_stop_working(
    client: FlaskClient, admin: Account, user: Account, outbox: list[EmailMessage]
) -> None:
    token = reset_token(client, outbox, user.email)
    assert client.patch(f"/api/v1/users/{user.id}", headers=admin.headers, json={"is_active": False}).status_code == 200
    outbox.clear()
    assert request_reset(client, user.email).status_code == 202
    assert outbox == []
    assert_problem(confirm(client, token), 400, "token_invalid")


def test_a_reset_verifies_the_email_it_was_sent_to(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    assert client.get(ME, headers=user.headers).get_json()["email_verified_at"] is None
    assert confirm(client, reset_token(client, outbox, user.email)).status_code == 204
    tokens = login(client, user.email, NEW_PASSWORD).get_json()
    assert client.get(ME, headers=bearer(tokens["access_token"])).get_json()["email_verified_at"] is not None


def test_the_mail_links_to_the_frontend_when_one_is_set(database_app: Flask, app: Flask) -> None:
    linked = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], FRONTEND_URL="https://app.example/"))
    user = make_user(app)
    assert request_reset(linked.test_client(), user.email).status_code == 202
    text = linked.extensions["mail_outbox"][-1].get_content()
    assert "https://app.example/reset-password#token=" in text


@pytest.mark.parametrize("known", [True, False])
def test_requests_for_one_address_are_limited_from_any_ip(
    limited: Callable[..., Flask], app: Flask, known: bool
) -> None:
    client = limited().test_client()
    email = make_user(app).email if known else "nobody@example.com"
    for i in range(3):
        assert request_reset(client, email, environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}).status_code == 202
    response = request_reset(client, email, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert_problem(response, 429, "too_many_requests")  # the same for an unknown address: no enumeration
    assert request_reset(client, "someone-else@example.com").status_code == 202


def test_requests_from_one_ip_are_limited(limited: Callable[..., Flask]) -> None:
    client = limited().test_client()
    for i in range(10):
        assert request_reset(client, f"u{i}@example.com").status_code == 202
    assert_problem(request_reset(client, "u99@example.com"), 429, "too_many_requests")
