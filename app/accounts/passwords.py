"""Password rules (NIST SP 800-63B): a length range and a blocklist, no composition rules."""

import re
from functools import cache
from pathlib import Path

from flask import current_app

PASSWORD_MAX_LENGTH = 1024  # bounds the hashing cost of a single request


@cache
def common_passwords() -> frozenset[str]:
    lines = (Path(__file__).parent / "data" / "common-passwords.txt").read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _letters(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why a new password is refused, or None."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if not minimum <= len(password) <= PASSWORD_MAX_LENGTH:
        return f"Length must be between {minimum} and {PASSWORD_MAX_LENGTH}."
    if _letters(password) in common_passwords() or password.lower() in common_passwords():
        return "This password is too common; choose another (a few unrelated words work well)."
    if re.fullmatch(r"(.+?)\1+", password, re.DOTALL) or re.fullmatch(r"(.+?)\1+", _letters(password)):
        return "This password is one pattern repeated; choose another."
    if _letters(current_app.config["APP_NAME"]) in _letters(password):
        return "The password must not contain the name of this service."
    local_part = _letters(email.partition("@")[0]) if email else ""
    if len(local_part) >= 3 and local_part in _letters(password):
        return "The password must not contain your email address."
    return None
