"""The per-account rate-limit key: whatever the body, a key Redis can store, and never an exception."""

from collections.abc import Iterator

import pytest
from flask import Flask

from app import create_app
from app.accounts.service import login_account_key
from tests.support.app import settings

DEEP = "[" * 50_000 + "]" * 50_000


@pytest.fixture(scope="module")
def keyed() -> Iterator[Flask]:
    """An app to make request contexts in; the key reads the body only, never the database."""
    yield create_app(settings(MAX_CONTENT_LENGTH=1024))


def key_for(app: Flask, body: str | bytes, content_type: str = "application/json") -> str:
    with app.test_request_context("/api/v1/auth/login", method="POST", data=body, content_type=content_type):
        return login_account_key()


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        '{"email": "a@example.com", "deep": ' + DEEP + "}",
        '{"email": ' + DEEP + "}",
        "{",
        b"\xff\xfe\x00",
        '"a@example.com"',
        '["a@example.com"]',
        "null",
        "42",
        "{}",
        '{"email": 5}',
        '{"email": ["a@example.com"]}',
        '{"email": "a@ex\\ud800ample.com"}',
        '{"email": "' + "a" * 2000 + '@example.com"}',  # over MAX_CONTENT_LENGTH
    ],
    ids=[
        "deep array",
        "deep field",
        "deep email",
        "truncated",
        "not UTF-8",
        "a string",
        "a list",
        "null",
        "a number",
        "no email",
        "a number for the email",
        "a list for the email",
        "a lone surrogate in the email",
        "too large",
    ],
)
def test_any_body_gives_a_key_redis_can_store(keyed: Flask, body: str | bytes) -> None:
    key = key_for(keyed, body)
    assert key.startswith("account:") and len(key.encode()) <= 80


def test_one_account_is_one_key_however_spelt_and_another_is_another(keyed: Flask) -> None:
    spellings = [
        '{"email": "ada@example.com"}',
        '{"email": " Ada@Example.COM "}',
        '{"email": "ada@example.com", "x": 1}',
    ]
    assert len({key_for(keyed, body) for body in spellings}) == 1
    assert key_for(keyed, '{"email": "bob@example.com"}') != key_for(keyed, spellings[0])
    assert "ada" not in key_for(keyed, spellings[0])  # no address in Redis, nor in the limiter's log lines
    assert key_for(keyed, '{"email": "ada@example.com"}', content_type="text/plain") == key_for(keyed, "{}")
