"""One mailbox, one account: every way an email enters is normalised the same way (NFKC, lower case,
the domain in its IDNA ASCII form), so look-alike spellings of one address cannot make a second account."""

from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.accounts.models import normalise_email
from tests.support.app import PASSWORD, Account, assert_problem, login, make_user, register

STORED = "ada@xn--bcher-kva.example"
# The same mailbox, spelt as a browser, a phone keyboard or a copy from a PDF may spell it.
SPELLINGS = [
    "ada@bücher.example",  # the domain in Unicode
    "ADA@XN--BCHER-KVA.EXAMPLE",  # in punycode, upper case
    "\uff41\uff44\uff41@bücher.example",  # fullwidth letters
    "ada@bu\u0308cher.example",  # u + combining diaeresis (NFD) instead of ü
    "ada@BÜCHER.example",  # upper-case Unicode
    "ada@bücher\u3002example",  # an ideographic full stop between labels
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_an_address_is_one_stored_form(spelling: str) -> None:
    assert normalise_email(spelling) == STORED


def test_the_local_part_is_folded_by_nfkc_and_case_but_not_across_scripts() -> None:
    assert (
        normalise_email("Jose\u0301@example.com")
        == normalise_email("\uff2a\uff2f\uff33É@example.com")
        == "josé@example.com"
    )
    assert normalise_email("\ufb01le@example.com") == "file@example.com"  # the fi ligature
    # A Cyrillic \u0430 is another letter, so possibly another mailbox: kept apart, not guessed at.
    assert normalise_email("\u0430da@example.com") != "ada@example.com"


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_look_alike_spelling_cannot_register_a_second_account(client: FlaskClient, spelling: str) -> None:
    assert register(client, email="ada@bücher.example").status_code == 201
    assert_problem(register(client, email=spelling), 409)


def test_any_spelling_logs_in_and_asks_for_a_reset(client: FlaskClient, app: Flask, outbox: list[EmailMessage]) -> None:
    make_user(app, email="ADA@bücher.example")
    for spelling in SPELLINGS:
        assert login(client, spelling, PASSWORD).status_code == 200, spelling
    assert client.post("/api/v1/auth/password-reset", json={"email": SPELLINGS[2]}).status_code == 202
    assert [mail["To"] for mail in outbox] == [STORED]


def test_an_email_change_or_an_admins_write_cannot_take_a_look_alike(
    client: FlaskClient, app: Flask, user: Account, admin: Account
) -> None:
    make_user(app, email="ada@bücher.example")
    change = {"email": SPELLINGS[3], "current_password": PASSWORD}
    assert_problem(client.patch("/api/v1/users/me", json=change, headers=user.headers), 409)
    create = {"email": SPELLINGS[2], "password": PASSWORD, "display_name": "Twin"}
    assert_problem(client.post("/api/v1/users", json=create, headers=admin.headers), 409)
    patch = {"email": SPELLINGS[1], "current_password": PASSWORD}
    assert_problem(client.patch(f"/api/v1/users/{user.id}", json=patch, headers=admin.headers), 409)


def test_the_cli_refuses_a_look_alike_of_an_existing_address(app: Flask) -> None:
    make_user(app, email="ada@bücher.example")
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "--email", SPELLINGS[2]], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code != 0


def test_the_list_filter_finds_an_address_however_it_is_spelt(client: FlaskClient, app: Flask, admin: Account) -> None:
    make_user(app, email="ada@bücher.example")
    for term in ("\uff41\uff44\uff41@bücher", "@BÜCHER.example", "xn--bcher"):
        found = client.get("/api/v1/users", query_string={"email": term}, headers=admin.headers).get_json()
        assert [item["email"] for item in found["items"]] == [STORED], term
