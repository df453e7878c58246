"""REGISTRATION_ENUMERATION_SAFE: registration and email changes that do not tell whether an address
has an account. Off (the default), a taken address is a 409; tests/accounts/test_auth.py holds that."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.accounts.models import User
from app.core import mail
from app.core.extensions import db
from tests.support.app import PASSWORD, Account, assert_problem, login, make_user, register, settings

OTHER_PASSWORD = "someone else entirely, trying"


@pytest.fixture
def safe(app: Flask) -> Iterator[Flask]:
    """An app on the test database with REGISTRATION_ENUMERATION_SAFE on, its outbox empty."""
    safe_app = create_app(settings(DATABASE_URL=app.config["DATABASE_URL"], REGISTRATION_ENUMERATION_SAFE=True))
    mail.outbox(safe_app).clear()
    yield safe_app


def sent(app: Flask) -> list[EmailMessage]:
    return mail.outbox(app)


def users(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(User)) or 0)


def test_a_free_address_is_registered_with_202(safe: Flask) -> None:
    client = safe.test_client()
    response = register(client)
    assert response.status_code == 202
    assert "Location" not in response.headers
    assert login(client, "ada@example.com", PASSWORD).status_code == 200
    assert [m["Subject"] for m in sent(safe)] == ["Confirm your email address"]


def test_a_taken_address_gets_the_same_answer_and_its_owner_a_mail(safe: Flask) -> None:
    client = safe.test_client()
    make_user(safe, email="ada@example.com")
    free, taken = (
        register(client, email="bea@example.com"),
        register(client, email="ADA@example.com", password=OTHER_PASSWORD),
    )
    assert (taken.status_code, taken.get_json(), taken.mimetype) == (free.status_code, free.get_json(), free.mimetype)
    assert set(taken.headers.keys()) == set(free.headers.keys())
    # The owner is told, and nothing about the account changed: no new password, no second account.
    notice = [m for m in sent(safe) if m["To"] == "ada@example.com"]
    assert [m["Subject"] for m in notice] == ["Someone tried to register with your address"]
    assert "password-reset" in notice[0].get_content()
    assert login(client, "ada@example.com", PASSWORD).status_code == 200
    assert_problem(login(client, "ada@example.com", OTHER_PASSWORD), 401, "invalid_credentials")
    assert users(safe) == 2


def test_racing_registrations_of_one_address_all_get_202_and_make_one_account(safe: Flask) -> None:
    barrier = threading.Barrier(8)

    def attempt(i: int) -> int:
        client = safe.test_client()
        barrier.wait()
        return register(client, email="race@example.com", display_name=f"R{i}").status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert statuses == [202] * 8
    assert users(safe) == 1


def test_the_spec_documents_both_answers_of_register(client: FlaskClient) -> None:
    answers = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/auth/register"]["post"]["responses"]
    assert {"201", "202", "409"} <= answers.keys()
    assert "REGISTRATION_ENUMERATION_SAFE" in answers["202"]["description"]


# --- an email change to a taken address --------------------------------------------------------


def change_email(client: FlaskClient, account: Account, email: str) -> Any:
    return client.patch(
        "/api/v1/users/me", headers=account.headers, json={"email": email, "current_password": PASSWORD}
    )


def test_by_default_an_email_change_to_a_taken_address_is_409(client: FlaskClient, user: Account, app: Flask) -> None:
    make_user(app, email="taken@example.com")
    assert_problem(change_email(client, user, "taken@example.com"), 409, "conflict")


def test_an_email_change_to_a_taken_address_looks_like_any_other(safe: Flask) -> None:
    client = safe.test_client()
    make_user(safe, email="taken@example.com")
    make_user(safe, email="mover@example.com")
    mover = Account(client, "", "mover@example.com", PASSWORD)
    mover.login()

    to_free, to_taken = (
        change_email(client, mover, "free@example.com"),
        change_email(client, mover, "taken@example.com"),
    )
    assert (to_free.status_code, to_taken.status_code) == (200, 200)
    assert (to_free.get_json()["pending_email"], to_taken.get_json()["pending_email"]) == (
        "free@example.com",
        "taken@example.com",
    )
    # The taken address's owner gets a notice without a token; the account keeps its own address.
    to_owner = [m for m in sent(safe) if m["To"] == "taken@example.com"]
    assert [m["Subject"] for m in to_owner] == ["Someone tried to use your address for another account"]
    assert "token" not in to_owner[0].get_content().lower()
    me = client.get("/api/v1/users/me", headers=mover.headers).get_json()
    assert me["email"] == "mover@example.com"
    assert login(client, "taken@example.com", PASSWORD).status_code == 200  # the owner's account is untouched
