"""Changing an account's address: it takes the password, the new address must confirm, the old one is told.

A stolen access token alone must not be enough to move an account to another address and then reset
its password from there.
"""

from email.message import EmailMessage
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.app import PASSWORD, Account, assert_problem, bearer, login, mailed_token

ME = "/api/v1/users/me"
RESET = "/api/v1/auth/password-reset"
CONFIRM_RESET = "/api/v1/auth/password-reset/confirm"
VERIFY = "/api/v1/auth/verify-email"
ATTACKER = "attacker@evil.example"
NEW_PASSWORD = "a brand new and rather long passphrase"


def change_email(client: FlaskClient, account: Account, email: str, password: str | None = PASSWORD) -> Any:
    body = {"email": email} if password is None else {"email": email, "current_password": password}
    return client.patch(ME, headers=account.headers, json=body)


def mails_to(outbox: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [mail for mail in outbox if mail["To"] == address]


def test_a_stolen_access_token_cannot_move_the_account_and_reset_it(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    """The takeover: change the email with only the token, ask for a reset there, set a password."""
    body = assert_problem(change_email(client, user, ATTACKER, password=None), 422, "validation_failed")
    assert list(body["errors"]) == ["current_password"]
    assert client.post(RESET, json={"email": ATTACKER}).status_code == 202
    assert mails_to(outbox, ATTACKER) == []
    assert client.get(ME, headers=user.headers).get_json()["email"] == user.email
    assert login(client, user.email, PASSWORD).status_code == 200


def test_a_wrong_password_changes_nothing(client: FlaskClient, user: Account, outbox: list[EmailMessage]) -> None:
    body = assert_problem(change_email(client, user, ATTACKER, "a guess at the password"), 422)
    assert body["errors"] == {"current_password": ["Incorrect password."]}
    me = client.get(ME, headers=user.headers).get_json()
    assert (me["email"], me["pending_email"]) == (user.email, None)
    assert outbox == []


def test_a_new_address_is_pending_until_it_confirms(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    response = change_email(client, user, "New@Example.com")
    assert response.status_code == 200
    assert (response.get_json()["email"], response.get_json()["pending_email"]) == (user.email, "new@example.com")

    # Until the new address confirms, the account is the old address's: login, and resets, go there.
    assert_problem(login(client, "new@example.com", PASSWORD), 401, "invalid_credentials")
    assert login(client, user.email, PASSWORD).status_code == 200
    [confirmation] = mails_to(outbox, "new@example.com")
    outbox.clear()
    assert client.post(RESET, json={"email": "new@example.com"}).status_code == 202
    assert client.post(RESET, json={"email": user.email}).status_code == 202
    assert [mail["To"] for mail in outbox] == [user.email]

    assert client.post(VERIFY, json={"token": mailed_token(confirmation)}).status_code == 204
    me = client.get(ME, headers=user.headers).get_json()
    assert (me["email"], me["pending_email"]) == ("new@example.com", None)
    assert me["email_verified_at"] is not None  # the confirmation proved the new address
    assert login(client, "new@example.com", PASSWORD).status_code == 200
    assert_problem(login(client, user.email, PASSWORD), 401, "invalid_credentials")


def test_the_old_address_is_told_and_a_reset_from_it_cancels_the_change(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    """Someone who also knew the password asks for a move: the owner hears of it and takes the account back."""
    intruder = Account(client, user.id, user.email, PASSWORD)
    intruder.login()
    assert change_email(client, intruder, ATTACKER).status_code == 200
    [notice] = mails_to(outbox, user.email)
    text = notice.get_content()
    assert notice["Subject"] == "Your account's email address is changing"
    assert "reset your password" in text and "/auth/password-reset" in text
    assert ATTACKER not in text and "a*******@evil.example" in text  # enough to recognise, not the address itself
    [confirmation] = mails_to(outbox, ATTACKER)

    assert client.post(RESET, json={"email": user.email}).status_code == 202
    reset = {"token": mailed_token(outbox[-1]), "new_password": NEW_PASSWORD}
    assert client.post(CONFIRM_RESET, json=reset).status_code == 204

    assert_problem(client.post(VERIFY, json={"token": mailed_token(confirmation)}), 400)
    assert_problem(client.get(ME, headers=intruder.headers), 401)
    owner = login(client, user.email, NEW_PASSWORD).get_json()
    me = client.get(ME, headers=bearer(owner["access_token"])).get_json()
    assert (me["email"], me["pending_email"]) == (user.email, None)


def test_asking_for_the_change_again_does_not_void_the_owners_reset(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    intruder = Account(client, user.id, user.email, PASSWORD)
    intruder.login()
    assert change_email(client, intruder, ATTACKER).status_code == 200
    assert client.post(RESET, json={"email": user.email}).status_code == 202  # the owner, told
    reset = {"token": mailed_token(outbox[-1]), "new_password": NEW_PASSWORD}
    assert change_email(client, intruder, ATTACKER).status_code == 200  # and again, to spoil that reset
    assert client.post(CONFIRM_RESET, json=reset).status_code == 204
    owner = login(client, user.email, NEW_PASSWORD).get_json()
    assert client.get(ME, headers=bearer(owner["access_token"])).get_json()["pending_email"] is None


def test_a_password_change_also_cancels_a_pending_change(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    assert change_email(client, user, ATTACKER).status_code == 200
    [confirmation] = mails_to(outbox, ATTACKER)
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post(f"{ME}/password", headers=user.headers, json=change).status_code == 204
    assert client.get(ME, headers=user.headers).get_json()["pending_email"] is None
    assert_problem(client.post(VERIFY, json={"token": mailed_token(confirmation)}), 400)


def test_asking_again_replaces_the_pending_address(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    assert change_email(client, user, "first@example.com").status_code == 200
    assert change_email(client, user, "second@example.com").status_code == 200
    assert client.get(ME, headers=user.headers).get_json()["pending_email"] == "second@example.com"
    [first] = mails_to(outbox, "first@example.com")
    assert_problem(client.post(VERIFY, json={"token": mailed_token(first)}), 400)
    # Asking for the first address again does not bring its first confirmation back to life either.
    assert change_email(client, user, "first@example.com").status_code == 200
    assert_problem(client.post(VERIFY, json={"token": mailed_token(first)}), 400)
    again = mails_to(outbox, "first@example.com")[-1]
    assert client.post(VERIFY, json={"token": mailed_token(again)}).status_code == 204
    assert client.get(ME, headers=user.headers).get_json()["email"] == "first@example.com"


def test_sending_the_current_address_withdraws_a_pending_change(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    assert change_email(client, user, "new@example.com").status_code == 200
    [confirmation] = mails_to(outbox, "new@example.com")
    response = client.patch(ME, headers=user.headers, json={"email": user.email.upper()})  # no change: no proof
    assert response.status_code == 200 and response.get_json()["pending_email"] is None
    assert_problem(client.post(VERIFY, json={"token": mailed_token(confirmation)}), 400)


def test_an_address_taken_when_the_change_confirms_is_409(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    assert change_email(client, user, "contested@example.com").status_code == 200
    [confirmation] = mails_to(outbox, "contested@example.com")
    body = {"email": "contested@example.com", "password": PASSWORD, "display_name": "Quick"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    taken = assert_problem(client.post(VERIFY, json={"token": mailed_token(confirmation)}), 409, "conflict")
    assert taken["errors"] == {"email": ["Already taken."]}
    assert client.get(ME, headers=user.headers).get_json()["email"] == user.email


@pytest.mark.parametrize("password", [None, "not the admin's password at all"])
def test_an_admin_changing_someones_email_needs_the_admins_own_password(
    client: FlaskClient, admin: Account, user: Account, outbox: list[EmailMessage], password: str | None
) -> None:
    body: dict[str, Any] = {"email": ATTACKER} | ({"current_password": password} if password else {})
    response = client.patch(f"/api/v1/users/{user.id}", headers=admin.headers, json=body)
    assert list(assert_problem(response, 422)["errors"]) == ["current_password"]
    assert outbox == []


def test_an_admins_change_of_someones_email_also_waits_for_the_new_address(
    client: FlaskClient, admin: Account, user: Account, outbox: list[EmailMessage]
) -> None:
    body = {"email": "moved@example.com", "current_password": PASSWORD}
    response = client.patch(f"/api/v1/users/{user.id}", headers=admin.headers, json=body)
    assert response.status_code == 200
    assert (response.get_json()["email"], response.get_json()["pending_email"]) == (user.email, "moved@example.com")
    assert sorted(mail["To"] for mail in outbox) == sorted([user.email, "moved@example.com"])
    [confirmation] = mails_to(outbox, "moved@example.com")
    assert client.post(VERIFY, json={"token": mailed_token(confirmation)}).status_code == 204
    assert client.get(ME, headers=user.headers).get_json()["email"] == "moved@example.com"


def test_a_password_change_is_told_to_the_accounts_address(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post(f"{ME}/password", headers=user.headers, json=change).status_code == 204
    [notice] = outbox
    assert (notice["To"], notice["Subject"]) == (user.email, "Your password was changed")
    assert "reset your password" in notice.get_content()


def test_a_reset_is_told_to_the_accounts_address(
    client: FlaskClient, user: Account, outbox: list[EmailMessage]
) -> None:
    assert client.post(RESET, json={"email": user.email}).status_code == 202
    reset = {"token": mailed_token(outbox[-1]), "new_password": NEW_PASSWORD}
    outbox.clear()
    assert client.post(CONFIRM_RESET, json=reset).status_code == 204
    [notice] = outbox
    assert (notice["To"], notice["Subject"]) == (user.email, "Your password was changed")
