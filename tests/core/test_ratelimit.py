"""Rate limits: per account and per IP on auth flows, a per-caller quota, all as problem+json 429."""

import time
from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask

from app import create_app
from app.core.ratelimit import limit
from app.toolkit.markers import public
from tests.support.app import PASSWORD, REAL_LIMITS, Account, assert_problem, bearer, make_user, settings

LOGIN = "/api/v1/auth/login"


def assert_throttled(response: Any) -> None:
    assert_problem(response, 429, "too_many_requests")
    assert 1 <= int(response.headers["Retry-After"]) <= 3601  # the window, rounded up
    assert response.headers["X-RateLimit-Remaining"] == "0"
    # Never sooner than the window's end: a client that waits exactly as told gets through.
    assert time.time() + int(response.headers["Retry-After"]) >= int(response.headers["X-RateLimit-Reset"])


def test_the_11th_failed_login_for_an_account_is_429_before_any_hashing(
    limited: Callable[..., Flask], app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = limited().test_client()
    alice = make_user(app, email="alice@example.com")
    for i in range(10):
        email = "Alice@Example.com" if i % 2 else "alice@example.com"  # one account, however spelt
        assert client.post(LOGIN, json={"email": email, "password": "wrong " * 4}).status_code == 401

    hashes: list[int] = []
    real_verify = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: hashes.append(1) or real_verify(self, h, p))
    assert_throttled(client.post(LOGIN, json={"email": alice.email, "password": PASSWORD}))  # even the right one
    assert hashes == []  # refused before the expensive part
    bob = make_user(app)
    assert client.post(LOGIN, json={"email": bob.email, "password": PASSWORD}).status_code == 200


def from_ip(address: str) -> dict[str, Any]:
    """Test-client options for a request from this client address."""
    return {"environ_base": {"REMOTE_ADDR": address}}


def guess(client: Any, email: str, address: str, **extra: Any) -> Any:
    return client.post(LOGIN, json={"email": email, "password": "wrong " * 4, **extra}, **from_ip(address))


def test_a_guesser_spread_over_many_addresses_stays_capped_per_account(
    limited: Callable[..., Flask], app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = limited().test_client()
    alice = make_user(app)
    for i in range(10):
        assert guess(client, alice.email, f"203.0.113.{i}").status_code == 401
    hashes: list[int] = []
    real_verify = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: hashes.append(1) or real_verify(self, h, p))
    # A new address, the right password: still refused, before any hashing, however many addresses it has.
    assert_throttled(client.post(LOGIN, json={"email": alice.email, "password": PASSWORD}, **from_ip("203.0.113.99")))
    assert hashes == []


def test_the_owner_still_logs_in_from_a_known_client_while_strangers_guess(
    limited: Callable[..., Flask], app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = limited().test_client()
    alice, mallory = make_user(app), make_user(app)
    owner = client.post(LOGIN, json={"email": alice.email, "password": PASSWORD}, **from_ip("198.51.100.7"))
    device = owner.get_json()["device_token"]
    strangers = client.post(LOGIN, json={"email": mallory.email, "password": PASSWORD}).get_json()["device_token"]
    for i in range(15):  # a lockout attempt, from many addresses, going on and on
        assert guess(client, alice.email, f"203.0.113.{i}").status_code in (401, 429)
    assert_throttled(client.post(LOGIN, json={"email": alice.email, "password": PASSWORD}, **from_ip("203.0.113.99")))
    # A device token of another account, or a made-up one, is no way past the cap.
    for token in (strangers, device[:-4] + "AAAA", "not-a-token"):
        wrong = {"email": alice.email, "password": PASSWORD, "device_token": token}
        assert_throttled(client.post(LOGIN, json=wrong, **from_ip("203.0.113.98")))
    # The owner, on a client that logged in before, gets in: from the same address or a new one.
    for address in ("198.51.100.7", "192.0.2.44"):
        body = {"email": alice.email.upper(), "password": PASSWORD, "device_token": device}
        answer = client.post(LOGIN, json=body, **from_ip(address))
        assert answer.status_code == 200, answer.get_json()
        device = answer.get_json()["device_token"]


def test_a_known_client_guessing_is_capped_on_its_own(limited: Callable[..., Flask], app: Flask) -> None:
    """A stolen device token is no licence to guess: its own failures are capped like an account's."""
    client = limited().test_client()
    alice = make_user(app)
    device = client.post(LOGIN, json={"email": alice.email, "password": PASSWORD}).get_json()["device_token"]
    for i in range(10):
        assert guess(client, alice.email, f"203.0.113.{i}", device_token=device).status_code == 401
    right = {"email": alice.email, "password": PASSWORD, "device_token": device}
    assert_throttled(client.post(LOGIN, json=right, **from_ip("203.0.113.99")))


def test_successful_logins_do_not_count_against_the_account(limited: Callable[..., Flask], app: Flask) -> None:
    client = limited().test_client()
    user = make_user(app)
    for _ in range(12):
        assert client.post(LOGIN, json={"email": user.email, "password": PASSWORD}).status_code == 200


def test_wrong_current_passwords_for_an_account_are_429_at_the_6th_from_any_ip(
    limited: Callable[..., Flask], app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Password changes and email changes check the current password: a stolen token must not make
    that an unlimited oracle by spreading its guesses over addresses. Both count against one limit."""
    client = limited().test_client()
    alice, bob = (Account(client, "", make_user(app).email, PASSWORD) for _ in range(2))
    alice.login()
    bob.login()
    guesses = [
        (
            "post",
            "/api/v1/users/me/password",
            {"current_password": "guess " * 4, "new_password": "a new long passphrase"},
        ),
        ("patch", "/api/v1/users/me", {"email": "thief@example.com", "current_password": "guess " * 4}),
    ]
    for i in range(5):
        method, path, body = guesses[i % 2]
        response = getattr(client, method)(
            path, json=body, headers=alice.headers, environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}
        )
        assert_problem(response, 422, "validation_failed")

    hashes: list[int] = []
    real_verify = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: hashes.append(1) or real_verify(self, h, p))
    right = {"current_password": PASSWORD, "new_password": "a new long passphrase"}
    elsewhere = {"REMOTE_ADDR": "10.0.9.9"}
    assert_throttled(
        client.post("/api/v1/users/me/password", json=right, headers=alice.headers, environ_base=elsewhere)
    )
    change = {"email": "new@example.com", "current_password": PASSWORD}
    assert_throttled(client.patch("/api/v1/users/me", json=change, headers=alice.headers, environ_base=elsewhere))
    assert hashes == []  # refused before the expensive part
    # What needs no password is not held up, and another account is not limited by these guesses.
    assert client.patch("/api/v1/users/me", json={"display_name": "Alice"}, headers=alice.headers).status_code == 200
    assert client.post("/api/v1/users/me/password", json=right, headers=bob.headers).status_code == 204


def test_the_quota_still_holds_beside_the_limit_on_password_guesses(limited: Callable[..., Flask], app: Flask) -> None:
    """PATCH /users/me carries the limit on guesses; GET and DELETE of the same resource keep the quota."""
    client = limited(RATELIMIT_PER_CALLER="3 per minute").test_client()
    account = Account(client, "", make_user(app).email, PASSWORD)
    account.login()
    assert client.patch("/api/v1/users/me", json={"display_name": "Once"}, headers=account.headers).status_code == 200
    for _ in range(2):
        assert client.get("/api/v1/users/me", headers=account.headers).status_code == 200
    assert_throttled(client.get("/api/v1/users/me", headers=account.headers))


def test_right_current_passwords_do_not_count_against_the_account(limited: Callable[..., Flask], app: Flask) -> None:
    client = limited().test_client()
    account = Account(client, "", make_user(app).email, PASSWORD)
    account.login()
    for i in range(8):
        change = {"email": f"new-{i}@example.com", "current_password": PASSWORD}
        assert client.patch("/api/v1/users/me", json=change, headers=account.headers).status_code == 200


def test_login_spraying_from_one_ip_is_429_at_the_31st(limited: Callable[..., Flask]) -> None:
    client = limited().test_client()
    for i in range(30):
        assert client.post(LOGIN, json={"email": f"u{i}@example.com", "password": PASSWORD}).status_code == 401
    assert_throttled(client.post(LOGIN, json={"email": "u99@example.com", "password": PASSWORD}))


def test_a_spoofed_forwarded_for_does_not_reset_the_ip_limit(limited: Callable[..., Flask]) -> None:
    client = limited(RATELIMIT_LOGIN_IP="3 per minute").test_client()
    for i in range(3):
        headers = {"X-Forwarded-For": f"10.0.0.{i}"}
        client.post(LOGIN, json={"email": f"s{i}@example.com", "password": PASSWORD}, headers=headers)
    assert_throttled(
        client.post(
            LOGIN, json={"email": "s9@example.com", "password": PASSWORD}, headers={"X-Forwarded-For": "10.9.9.9"}
        )
    )


def test_registration_is_429_at_the_6th_from_one_ip(limited: Callable[..., Flask]) -> None:
    client = limited().test_client()
    for i in range(5):
        body = {"email": f"r{i}@example.com", "password": PASSWORD, "display_name": "R"}
        assert client.post("/api/v1/auth/register", json=body).status_code == 201
    body = {"email": "r9@example.com", "password": PASSWORD, "display_name": "R"}
    assert_throttled(client.post("/api/v1/auth/register", json=body))


def test_refresh_is_429_at_the_21st_from_one_ip(limited: Callable[..., Flask], app: Flask) -> None:
    client = limited().test_client()
    account = Account(client, "", make_user(app).email, PASSWORD)
    tokens = account.login()
    for _ in range(20):
        response = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
        assert response.status_code == 200
        tokens = response.get_json()
    assert_throttled(client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])))


def test_the_general_quota_is_per_user_and_spares_probes(limited: Callable[..., Flask], app: Flask) -> None:
    client = limited(RATELIMIT_PER_CALLER="3 per minute").test_client()
    first, second = (Account(client, "", make_user(app).email, PASSWORD) for _ in range(2))
    first.login()
    second.login()
    for _ in range(3):
        assert client.get("/api/v1/users/me", headers=first.headers).status_code == 200
    assert_throttled(client.get("/api/v1/users/me", headers=first.headers))
    assert client.get("/api/v1/users/me", headers=second.headers).status_code == 200
    for _ in range(5):
        assert client.get("/api/v1/health/live").status_code == 200


def test_a_forged_token_cannot_spend_someone_elses_quota(limited: Callable[..., Flask], app: Flask) -> None:
    client = limited(RATELIMIT_PER_CALLER="3 per minute").test_client()
    victim = Account(client, "", make_user(app).email, PASSWORD)
    victim.login()
    header, payload, _ = victim.tokens["access_token"].split(".")
    forged = bearer(f"{header}.{payload}.forged-signature")
    for _ in range(3):
        assert client.get("/api/v1/users/me", headers=forged).status_code == 401
    assert client.get("/api/v1/users/me", headers=victim.headers).status_code == 200


def test_a_key_that_fails_counts_by_address_and_never_switches_the_limits_off(caplog: pytest.LogCaptureFixture) -> None:
    """Flask-Limiter takes any exception in a limit check for a storage outage and falls back to
    per-process counters; a key function's own failure must not be able to do that. (Once, not per
    database: the limiter is one per process and keeps each decorated view's limits.)"""

    def broken_key() -> str:
        raise RuntimeError("a key that cannot be computed")

    app = create_app(settings(**{**REAL_LIMITS, "RATELIMIT_LOGIN_IP": "3 per minute"}))
    app.post("/guarded")(public(limit("RATELIMIT_LOGIN_IP", broken_key)(lambda: "")))
    client = app.test_client()
    assert [client.post("/guarded").status_code for _ in range(3)] == [200] * 3
    assert_throttled(client.post("/guarded"))
    assert "falling back to in-memory storage" not in caplog.text
    assert "a key that cannot be computed" in caplog.text  # the bug is in the log, as itself


def test_an_exemption_that_fails_applies_the_limit_and_never_switches_it_off(caplog: pytest.LogCaptureFixture) -> None:
    """The same for a limit's exempt_when: when it raises, the request is counted, and the log says why."""

    def broken_exemption() -> bool:
        raise RuntimeError("an exemption that cannot be decided")

    app = create_app(settings(**{**REAL_LIMITS, "RATELIMIT_LOGIN_IP": "2 per minute"}))
    app.post("/exempted")(public(limit("RATELIMIT_LOGIN_IP", exempt_when=broken_exemption)(lambda: "")))
    client = app.test_client()
    assert [client.post("/exempted").status_code for _ in range(2)] == [200] * 2
    assert_throttled(client.post("/exempted"))
    assert "falling back to in-memory storage" not in caplog.text
    assert "an exemption that cannot be decided" in caplog.text
