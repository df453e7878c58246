"""Device tokens: what a client that has logged in to an account before shows, so that strangers
guessing at the account cannot lock its owner out (OWASP's "device cookies").

A successful login hands the client a token bound to the account's email. Failed logins from clients
without one count against the account (RATELIMIT_LOGIN_ACCOUNT), whatever their address; a client with
one counts on its own (RATELIMIT_LOGIN_DEVICE), so its owner's correct password still works while the
account's cap is spent. Checking one is a signature check, no database work: it runs before any hashing.
"""

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import jwt
from flask import current_app, g, request
from werkzeug.exceptions import HTTPException

from app.accounts.models import normalise_email
from app.core.database import utcnow

DEVICE_TOKEN_LIFE = timedelta(days=180)
DEVICE_COOKIE = "__Host-device"


def account_digest(email: str) -> str:
    """What a device token names its account by: not the address itself, which the client holds anyway."""
    return hashlib.sha256(normalise_email(email).encode(errors="surrogatepass")).hexdigest()


def mint_device_token(email: str) -> str:
    """A device token for the account with this (normalised) email."""
    config, now = current_app.config, utcnow()
    claims = {
        "type": "device",
        "acct": account_digest(email),
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + DEVICE_TOKEN_LIFE,
        "iss": config["JWT_ISSUER"],
        "aud": config["JWT_AUDIENCE"],
    }
    return jwt.encode(claims, config["JWT_SECRET_KEY"], algorithm=config["JWT_ALGORITHM"])


def _login_body() -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except (RecursionError, HTTPException):  # too deep or too large to read; the handler refuses it
        return {}
    return body if isinstance(body, dict) else {}


def device_id() -> str | None:
    """The id of the valid device token this login request shows for the email it names, else None.
    Read from the body's device_token, or in cookie mode the __Host-device cookie."""
    if "known_device" not in g:  # asked by each login limit: decoded once
        g.known_device = _known_device()
    found: str | None = g.known_device
    return found


def _known_device() -> str | None:
    body = _login_body()
    token, email = body.get("device_token") or request.cookies.get(DEVICE_COOKIE), body.get("email")
    if not isinstance(token, str) or not isinstance(email, str):
        return None
    config = current_app.config
    try:
        claims = jwt.decode(
            token,
            config["JWT_SECRET_KEY"],
            algorithms=config["JWT_DECODE_ALGORITHMS"],
            audience=config["JWT_DECODE_AUDIENCE"],
            issuer=config["JWT_DECODE_ISSUER"],
            options={"require": ["type", "acct", "jti", "exp", "iss", "aud"]},
        )
    except jwt.PyJWTError:
        return None
    if claims["type"] != "device" or claims["acct"] != account_digest(email):
        return None
    return str(claims["jti"])


def device_key() -> str:
    """Rate-limit key: failed logins from one known client (exempt when the request shows none)."""
    return "device:" + (device_id() or "")


def known_device() -> bool:
    """Whether the login request shows a valid device token for the email it names."""
    return device_id() is not None


def unknown_device() -> bool:
    return device_id() is None
