"""Account actions more than one route (or the CLI) needs: creating users, and the per-account limit key."""

import hashlib
import uuid
from typing import Any

from flask import request
from werkzeug.exceptions import HTTPException

from app.accounts.models import User, normalise_email
from app.accounts.tokens import verification_mail
from app.audit.trail import record
from app.core.extensions import db
from app.core.mail import send


def create_user(data: dict[str, Any], action: str = "user.created", actor_id: uuid.UUID | None = None) -> User:
    """Insert, audit and commit a user, then mail a verification token unless the email is verified."""
    password = data.pop("password")
    user = User(**data)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()  # assigns the id the audit event and the token refer to
    record(action, actor_id, user.id)
    mail = None if user.email_verified_at else verification_mail(user)
    db.session.commit()
    if mail:
        send(mail)
    return user


def login_account_key() -> str:
    """Rate-limit key: failed logins and reset requests count against the normalised email, from any IP.

    Flask-Limiter takes any exception here for a storage outage, so every body gives a key: deep,
    malformed, oversized or not an object. The email is hashed: the key is bounded, Redis can encode
    it whatever the body held, and no address reaches Redis or the limiter's log lines.
    """
    try:
        body = request.get_json(silent=True)
    except (RecursionError, HTTPException):  # too deep or too large to read; the handler refuses it
        body = None
    email = body.get("email") if isinstance(body, dict) else None
    account = normalise_email(email) if isinstance(email, str) else ""
    return "account:" + hashlib.sha256(account.encode(errors="surrogatepass")).hexdigest()
