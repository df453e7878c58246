"""Multi-factor authentication (TOTP): enrolment, the second login step, recovery codes, step-up for
sensitive changes, an admin's reset, and the limits that keep a 6-digit code out of reach of guessing.

A stolen password alone must not give tokens, and a code seen once must not work twice.
"""

import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.message import EmailMessage
from http.cookies import SimpleCookie
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app import create_app
from app.accounts.factors import MfaChallenge, MfaFactor, RecoveryCode
from app.accounts.tokens import digest
from app.audit.models import AuditEvent
from app.core.database import utcnow
from app.core.extensions import db
from tests.support.app import PASSWORD, Account, assert_problem, bearer, login, mailed_token, make_user, settings

MFA = "/api/v1/mfa"
ENROL = "/api/v1/mfa/enrolment"
CONFIRM = "/api/v1/mfa/enrolment/confirm"
DISABLE = "/api/v1/mfa/disable"
RECOVERY = "/api/v1/mfa/recovery-codes"
SECOND_STEP = "/api/v1/auth/login/mfa"
ME = "/api/v1/users/me"
NEW_PASSWORD = "a brand new and rather long passphrase"


def enrol(client: FlaskClient, account: Account) -> tuple[str, list[str]]:
    """Turn MFA on for the account: its TOTP secret and recovery codes."""
    response = client.post(ENROL, headers=account.headers, json={"current_password": account.password})
    assert response.status_code == 200, response.get_json()
    secret = response.get_json()["secret"]
    confirmed = client.post(CONFIRM, headers=account.headers, json={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.get_json()
    return secret, confirmed.get_json()["recovery_codes"]


def fresh_code(app: Flask, account: Account, secret: str) -> str:
    """A code not yet used: as if the next 30-second window had come (tests do not wait for it)."""
    with app.app_context():
        db.session.execute(update(MfaFactor).where(MfaFactor.user_id == uuid.UUID(account.id)).values(last_step=None))
        db.session.commit()
    return pyotp.TOTP(secret).now()


def wrong_code(secret: str) -> str:
    """A 6-digit code that is not valid now, nor in the neighbouring windows."""
    totp = pyotp.TOTP(secret)
    valid = {totp.at(time.time() + drift) for drift in (-60, -30, 0, 30, 60)}
    return next(code for code in ("000000", "111111", "222222", "333333", "444444", "555555") if code not in valid)


def first_step(client: FlaskClient, account: Account) -> str:
    """Log in with the password; the mfa_token of the 403 mfa_required."""
    body = assert_problem(login(client, account.email, account.password), 403, "mfa_required")
    assert isinstance(body["mfa_token"], str)
    return str(body["mfa_token"])


def second_step(client: FlaskClient, token: str, code: str) -> Any:
    return client.post(SECOND_STEP, json={"mfa_token": token, "code": code})


def actions(app: Flask, target: str) -> list[str]:
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.target_id == uuid.UUID(target)).order_by(AuditEvent.created_at)
        )
        return [event.action for event in events]


@pytest.fixture
def enrolled(client: FlaskClient, user: Account) -> tuple[Account, str, list[str]]:
    secret, codes = enrol(client, user)
    return user, secret, codes


# --- enrolment -------------------------------------------------------------------------------------


def test_enrolment_needs_the_current_password(client: FlaskClient, user: Account) -> None:
    body = assert_problem(client.post(ENROL, headers=user.headers, json={"current_password": "a guess"}), 422)
    assert body["errors"] == {"current_password": ["Incorrect password."]}
    assert_problem(client.post(ENROL, headers=user.headers, json={}), 422)
    assert_problem(client.post(ENROL, json={"current_password": PASSWORD}), 401)


def test_enrolment_gives_a_secret_and_a_provisioning_uri_issued_by_the_app(
    client: FlaskClient, user: Account, app: Flask
) -> None:
    answer = client.post(ENROL, headers=user.headers, json={"current_password": PASSWORD}).get_json()
    uri = answer["provisioning_uri"]
    assert uri.startswith("otpauth://totp/")
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == answer["secret"]
    assert parsed.issuer == app.config["APP_NAME"]
    assert urllib.parse.unquote(uri).split("?")[0].endswith(user.email)
    # Pending until a code confirms it: the password alone still logs in.
    assert client.get(MFA, headers=user.headers).get_json()["enabled"] is False
    assert login(client, user.email, PASSWORD).status_code == 200


def test_a_wrong_first_code_leaves_mfa_off(client: FlaskClient, user: Account) -> None:
    secret = client.post(ENROL, headers=user.headers, json={"current_password": PASSWORD}).get_json()["secret"]
    body = assert_problem(client.post(CONFIRM, headers=user.headers, json={"code": wrong_code(secret)}), 422)
    assert body["errors"] == {"code": ["Incorrect code."]}
    assert client.get(MFA, headers=user.headers).get_json()["enabled"] is False
    assert login(client, user.email, PASSWORD).status_code == 200


def test_confirmation_needs_an_enrolment(client: FlaskClient, user: Account) -> None:
    assert_problem(client.post(CONFIRM, headers=user.headers, json={"code": "123456"}), 409, "mfa_not_pending")


def test_confirming_turns_mfa_on_with_ten_single_use_recovery_codes_stored_hashed(
    client: FlaskClient, user: Account, app: Flask
) -> None:
    _secret, codes = enrol(client, user)
    assert len(set(codes)) == 10
    status = client.get(MFA, headers=user.headers).get_json()
    assert (status["enabled"], status["recovery_codes_left"]) == (True, 10)
    assert status["enabled_at"] is not None
    with app.app_context():
        stored = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10
    assert not {code.replace("-", "") for code in codes} & set(stored)
    assert all(len(digest) == 64 for digest in stored)
    # Enrolling again while MFA is on would swap the factor without a code.
    response = client.post(ENROL, headers=user.headers, json={"current_password": PASSWORD})
    assert_problem(response, 409, "mfa_enabled")
    assert actions(app, user.id).count("mfa.enabled") == 1


# --- the second login step ---------------------------------------------------------------------------


def test_the_password_alone_gets_no_tokens_once_mfa_is_on(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, _secret, _codes = enrolled
    response = login(client, user.email, PASSWORD)
    body = assert_problem(response, 403, "mfa_required")
    assert "access_token" not in body and "refresh_token" not in body
    assert "Set-Cookie" not in response.headers
    assert "login.mfa_required" in actions(app, user.id)


def test_the_second_step_with_a_code_issues_the_token_pair(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, secret, _codes = enrolled
    token = first_step(client, user)
    response = second_step(client, token, fresh_code(app, user, secret))
    assert response.status_code == 200, response.get_json()
    tokens = response.get_json()
    assert client.get(ME, headers=bearer(tokens["access_token"])).get_json()["email"] == user.email
    assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 200
    assert actions(app, user.id)[-1] == "login.succeeded"


def test_a_challenge_works_once(client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask) -> None:
    user, secret, _codes = enrolled
    token = first_step(client, user)
    assert second_step(client, token, fresh_code(app, user, secret)).status_code == 200
    assert_problem(second_step(client, token, fresh_code(app, user, secret)), 401, "mfa_token_invalid")


@pytest.mark.parametrize("token", ["not-a-challenge", "x" * 128])
def test_an_unknown_challenge_is_refused(client: FlaskClient, token: str) -> None:
    assert_problem(second_step(client, token, "123456"), 401, "mfa_token_invalid")


@pytest.mark.parametrize(
    "body", [{}, {"mfa_token": "t"}, {"code": "123456"}, {"mfa_token": "t" * 129, "code": "1"}, [1], "x"]
)
def test_a_malformed_second_step_is_422(client: FlaskClient, body: Any) -> None:
    assert_problem(client.post(SECOND_STEP, json=body), 422, "validation_failed")


def test_an_expired_challenge_is_refused(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, secret, _codes = enrolled
    token = first_step(client, user)
    with app.app_context():
        db.session.execute(update(MfaChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert_problem(second_step(client, token, fresh_code(app, user, secret)), 401, "mfa_token_invalid")


def test_the_challenge_lasts_as_long_as_the_setting_says(database_app: Flask, app: Flask) -> None:
    short = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], MFA_CHALLENGE_MINUTES=2))
    client = short.test_client()
    user = make_user(app)
    account = Account(client, str(user.id), user.email, PASSWORD)
    account.login()
    enrol(client, account)
    first_step(client, account)
    with app.app_context():
        challenge = db.session.scalars(select(MfaChallenge)).one()
        assert timedelta(minutes=1) < challenge.expires_at - challenge.created_at <= timedelta(minutes=2)


def test_a_new_password_voids_a_challenge(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask, outbox: list[EmailMessage]
) -> None:
    """The owner resets the password of an account whose password leaked: a challenge the thief opened
    with the old one dies with it."""
    user, secret, _codes = enrolled
    token = first_step(client, user)
    client.post("/api/v1/auth/password-reset", json={"email": user.email})
    reset = {"token": mailed_token(outbox[-1]), "new_password": NEW_PASSWORD}
    assert client.post("/api/v1/auth/password-reset/confirm", json=reset).status_code == 204
    assert_problem(second_step(client, token, fresh_code(app, user, secret)), 401, "mfa_token_invalid")
    # A reset does not turn MFA off: the new password still needs the second step.
    assert_problem(login(client, user.email, NEW_PASSWORD), 403, "mfa_required")


def test_a_code_cannot_be_replayed_within_its_window(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, secret, _codes = enrolled
    code = fresh_code(app, user, secret)
    assert second_step(client, first_step(client, user), code).status_code == 200
    body = assert_problem(second_step(client, first_step(client, user), code), 401, "invalid_code")
    assert "4 more" in body["detail"]


def test_a_recovery_code_logs_in_once(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, _secret, codes = enrolled
    assert second_step(client, first_step(client, user), codes[0].upper()).status_code == 200
    assert_problem(second_step(client, first_step(client, user), codes[0]), 401, "invalid_code")
    assert client.get(MFA, headers=user.headers).get_json()["recovery_codes_left"] == 9
    assert "mfa.recovery_code_used" in actions(app, user.id)


def test_a_challenge_dies_after_five_wrong_codes(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, secret, _codes = enrolled
    token = first_step(client, user)
    for left in (4, 3, 2, 1, 0):
        body = assert_problem(second_step(client, token, wrong_code(secret)), 401, "invalid_code")
        assert f"{left} more" in body["detail"]
    # Now even the right code is refused: only the password opens a new challenge.
    assert_problem(second_step(client, token, fresh_code(app, user, secret)), 401, "mfa_token_invalid")
    assert actions(app, user.id).count("login.mfa_failed") == 5


def test_wrong_codes_are_limited_per_account_across_challenges(limited: Callable[..., Flask], app: Flask) -> None:
    """A new challenge for every 5 guesses does not reset the count: 5 wrong codes per 15 minutes and
    20 a day per account, so guessing one of 10^6 codes (3 accepted) stays out of reach."""
    client = limited(RATELIMIT_LOGIN_IP="1000 per minute").test_client()
    victim = make_user(app)
    account = Account(client, str(victim.id), victim.email, PASSWORD)
    account.login()
    secret, _codes = enrol(client, account)
    for _ in range(5):
        token = first_step(client, account)
        assert_problem(second_step(client, token, wrong_code(secret)), 401, "invalid_code")
    token = first_step(client, account)
    response = second_step(client, token, fresh_code(app, account, secret))
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    # Sensitive changes that take a code count against the same limit.
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "mfa_code": pyotp.TOTP(secret).now()}
    assert_problem(client.post("/api/v1/users/me/password", headers=account.headers, json=change), 429)
    # Another account is not held up by these guesses.
    other_user = make_user(app)
    other = Account(client, str(other_user.id), other_user.email, PASSWORD)
    other.login()
    other_secret, _ = enrol(client, other)
    assert second_step(client, first_step(client, other), fresh_code(app, other, other_secret)).status_code == 200


def test_right_codes_do_not_count_against_the_account(limited: Callable[..., Flask], app: Flask) -> None:
    client = limited(RATELIMIT_LOGIN_IP="1000 per minute").test_client()
    user = make_user(app)
    account = Account(client, str(user.id), user.email, PASSWORD)
    account.login()
    secret, _codes = enrol(client, account)
    for _ in range(7):
        assert second_step(client, first_step(client, account), fresh_code(app, account, secret)).status_code == 200


def test_two_racing_second_steps_with_one_code_log_in_once(
    app: Flask, enrolled: tuple[Account, str, list[str]]
) -> None:
    """Two challenges (the owner's and a thief's who has the password and saw the code) race with one code:
    the last accepted step is swapped in one statement, so one wins. Proven on Postgres."""
    user, secret, _codes = enrolled
    for _ in range(5):
        code = fresh_code(app, user, secret)
        tokens = [first_step(app.test_client(), user) for _ in range(2)]
        barrier = threading.Barrier(2)

        def finish(token: str, code: str = code, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return int(second_step(app.test_client(), token, code).status_code)

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(finish, tokens))
        assert statuses == [200, 401], statuses


def test_the_second_step_sets_the_cookies_in_cookie_mode(
    database_app: Flask, app: Flask, enrolled: tuple[Account, str, list[str]]
) -> None:
    user, secret, _codes = enrolled
    browser = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], AUTH_COOKIES=True)).test_client()
    first = login(browser, user.email, PASSWORD)
    token = assert_problem(first, 403, "mfa_required")["mfa_token"]
    assert "Set-Cookie" not in first.headers
    response = second_step(browser, token, fresh_code(app, user, secret))
    assert response.status_code == 200
    assert set(response.get_json()) == {"token_type", "expires_in"}
    cookies: SimpleCookie = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        cookies.load(header)
    assert {"__Host-access_token", "__Host-refresh_token", "__Host-device"} <= set(cookies)
    assert browser.get(ME).get_json()["email"] == user.email


# --- step-up for sensitive changes -------------------------------------------------------------------


def test_a_password_change_needs_a_code_while_mfa_is_on(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, secret, _codes = enrolled
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    url = "/api/v1/users/me/password"
    body = assert_problem(client.post(url, headers=user.headers, json=change), 422)
    assert list(body["errors"]) == ["mfa_code"]
    body = assert_problem(client.post(url, headers=user.headers, json={**change, "mfa_code": wrong_code(secret)}), 422)
    assert body["errors"] == {"mfa_code": ["Incorrect code."]}
    response = client.post(url, headers=user.headers, json={**change, "mfa_code": fresh_code(app, user, secret)})
    assert response.status_code == 204


def test_an_email_change_needs_a_code_while_mfa_is_on(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, _secret, codes = enrolled
    change = {"email": "new@example.com", "current_password": PASSWORD}
    body = assert_problem(client.patch(ME, headers=user.headers, json=change), 422)
    assert list(body["errors"]) == ["mfa_code"]
    assert client.get(ME, headers=user.headers).get_json()["pending_email"] is None
    response = client.patch(ME, headers=user.headers, json={**change, "mfa_code": codes[1]})
    assert response.status_code == 200
    assert response.get_json()["pending_email"] == "new@example.com"
    # What needs no proof needs no code either.
    assert client.patch(ME, headers=user.headers, json={"display_name": "Ada"}).status_code == 200


def test_without_mfa_changes_need_no_code(client: FlaskClient, user: Account) -> None:
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post("/api/v1/users/me/password", headers=user.headers, json=change).status_code == 204


def test_disabling_needs_the_password_and_a_code_and_mails_a_notice(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask, outbox: list[EmailMessage]
) -> None:
    user, secret, _codes = enrolled
    body = assert_problem(client.post(DISABLE, headers=user.headers, json={"current_password": PASSWORD}), 422)
    assert list(body["errors"]) == ["code"]
    wrong = {"current_password": "a guess at it", "code": fresh_code(app, user, secret)}
    assert list(assert_problem(client.post(DISABLE, headers=user.headers, json=wrong), 422)["errors"]) == [
        "current_password"
    ]
    right = {"current_password": PASSWORD, "code": fresh_code(app, user, secret)}
    assert client.post(DISABLE, headers=user.headers, json=right).status_code == 204
    assert client.get(MFA, headers=user.headers).get_json() == {
        "enabled": False,
        "enabled_at": None,
        "recovery_codes_left": 0,
    }
    assert login(client, user.email, PASSWORD).status_code == 200
    assert [mail["To"] for mail in outbox] == [user.email]
    assert "turned off" in outbox[0].get_content()
    assert "mfa.disabled" in actions(app, user.id)
    assert_problem(client.post(DISABLE, headers=user.headers, json=right), 409, "mfa_not_enabled")


def test_new_recovery_codes_replace_the_old(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, secret, old = enrolled
    response = client.post(
        RECOVERY, headers=user.headers, json={"current_password": PASSWORD, "code": fresh_code(app, user, secret)}
    )
    assert response.status_code == 200
    new = response.get_json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert_problem(second_step(client, first_step(client, user), old[0]), 401, "invalid_code")
    assert second_step(client, first_step(client, user), new[0]).status_code == 200
    assert "mfa.recovery_codes_regenerated" in actions(app, user.id)


# --- an admin's reset ------------------------------------------------------------------------------


def test_an_admin_resets_a_users_mfa_with_proof_audited_and_the_user_told(
    client: FlaskClient,
    enrolled: tuple[Account, str, list[str]],
    admin: Account,
    app: Flask,
    outbox: list[EmailMessage],
) -> None:
    user, _secret, _codes = enrolled
    url = f"/api/v1/users/{user.id}/mfa/reset"
    assert_problem(client.post(url, headers=user.headers, json={"current_password": PASSWORD}), 403)
    wrong = {"current_password": "not the admin's password"}
    assert_problem(client.post(url, headers=admin.headers, json=wrong), 422)
    assert_problem(login(client, user.email, PASSWORD), 403, "mfa_required")

    assert client.post(url, headers=admin.headers, json={"current_password": PASSWORD}).status_code == 204
    assert login(client, user.email, PASSWORD).status_code == 200
    assert [mail["To"] for mail in outbox] == [user.email]
    assert "administrator" in outbox[0].get_content()
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "mfa.reset")).one()
        assert (str(event.actor_id), str(event.target_id)) == (admin.id, user.id)
    assert_problem(client.post(url, headers=admin.headers, json={"current_password": PASSWORD}), 409)
    unknown = "/api/v1/users/6b1f2c1e-4a5d-4c1a-9f0e-2d3c4b5a6f70/mfa/reset"
    assert_problem(client.post(unknown, headers=admin.headers, json={"current_password": PASSWORD}), 404)


def test_an_admin_with_mfa_on_needs_their_own_code_to_reset(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], admin: Account, app: Flask
) -> None:
    user, _secret, _codes = enrolled
    admin_secret, _ = enrol(client, admin)
    url = f"/api/v1/users/{user.id}/mfa/reset"
    body = assert_problem(client.post(url, headers=admin.headers, json={"current_password": PASSWORD}), 422)
    assert list(body["errors"]) == ["code"]
    proof = {"current_password": PASSWORD, "code": fresh_code(app, admin, admin_secret)}
    assert client.post(url, headers=admin.headers, json=proof).status_code == 204


def test_the_openapi_document_describes_the_flow(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    login_op = document["paths"]["/api/v1/auth/login"]["post"]
    assert "403" in login_op["responses"] and "mfa_required" in login_op["description"]
    assert "mfa_token" in document["components"]["schemas"]["Problem"]["properties"]
    second = document["paths"]["/api/v1/auth/login/mfa"]["post"]
    assert second["operationId"] == "loginMfa" and second["security"] == []
    assert second["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/LoginToken")
    for path in ("/api/v1/mfa", "/api/v1/mfa/enrolment", "/api/v1/users/{user_id}/mfa/reset"):
        assert path in document["paths"]


def test_tokens_purge_removes_spent_and_expired_challenges(
    client: FlaskClient, enrolled: tuple[Account, str, list[str]], app: Flask
) -> None:
    user, secret, _codes = enrolled
    spent, expired, live = (first_step(client, user) for _ in range(3))
    assert second_step(client, spent, fresh_code(app, user, secret)).status_code == 200
    with app.app_context():
        db.session.execute(
            update(MfaChallenge)
            .where(MfaChallenge.token_hash == digest(expired))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["tokens", "purge"])
    assert result.exit_code == 0 and "2 MFA challenges" in result.output
    with app.app_context():
        assert list(db.session.scalars(select(MfaChallenge.token_hash))) == [digest(live)]
