"""Account actions more than one route (or the CLI) needs: creating users, proving and setting passwords,
moving to a new address, and the per-account limit key."""

import hashlib
import uuid
from email.message import EmailMessage
from typing import Any

from flask import Response, current_app, g, request
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from app.accounts.models import User, end_every_session, normalise_email, void_mailed_tokens
from app.accounts.tokens import (
    address_taken_notice,
    email_change_mail,
    email_change_notice,
    password_notice,
    registration_notice,
    spend_tokens,
    verification_mail,
)
from app.audit.trail import record
from app.core.errors import taken
from app.core.extensions import db
from app.core.hashing import spend_one_hash
from app.core.logs import security_event
from app.core.mail import send
from app.core.ratelimit import caller_key, limit


def create_user(data: dict[str, Any], action: str = "user.created", actor_id: uuid.UUID | None = None) -> User:
    """Insert, audit and commit a user, then mail a verification token unless the email is verified."""
    password = data.pop("password")
    user = User(**data)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()  # assigns the id the audit event and the token refer to
    record(action, actor_id, user.id)
    if not user.email_verified_at:
        send(verification_mail(user))
    db.session.commit()
    return user


def register_quietly(data: dict[str, Any]) -> None:
    """Create the account when the address is free; when it is taken, mail its owner instead. Either way
    one hash and one mail, so neither the answer nor its timing tells the caller which
    (REGISTRATION_ENUMERATION_SAFE)."""
    email, password = data["email"], data["password"]
    owner = db.session.scalar(select(User).where(User.email == email))
    if owner is None:
        try:
            create_user(data, "user.registered")
            return
        except IntegrityError:  # a racing registration took the address first
            db.session.rollback()
            owner = db.session.scalar(select(User).where(User.email == email))
    else:
        spend_one_hash(password)
    if owner is not None:
        security_event("registration.address_taken", target_id=str(owner.id))
        send(registration_notice(owner))
        db.session.commit()  # the notice goes out with the commit (the outbox), though nothing else changed


def prove_password(user: User, password: str) -> None:
    """422 unless the password is the user's own: what a change of email or password takes beyond a token,
    which can be stolen from a browser or a log without the password. A wrong one counts against
    RATELIMIT_PASSWORD_ACCOUNT (limit_password_guesses)."""
    if not user.check_password(password):
        g.password_refused = True
        raise ValidationError("Incorrect password.", "current_password")


def password_refused(_response: Response) -> bool:
    """Whether this request's current password was wrong: all that RATELIMIT_PASSWORD_ACCOUNT counts."""
    return bool(g.get("password_refused"))


def sends_no_password() -> bool:
    """Whether the body has no current_password (a new display name, say): no guess to count or refuse.
    Anything unreadable is not exempt; the handler refuses it."""
    try:
        body = request.get_json(silent=True)
    except (RecursionError, HTTPException):
        return False
    return not (isinstance(body, dict) and "current_password" in body)


# Wrong current passwords, per account (the caller's token subject) from any address, on every route
# that checks one: a stolen access token must not make them an oracle to query from many IPs.
limit_password_guesses = limit(
    "RATELIMIT_PASSWORD_ACCOUNT", caller_key, counts=password_refused, exempt_when=sends_no_password, shared=True
)


def set_new_password(user: User, password: str, how: str, keep: uuid.UUID | None = None) -> EmailMessage:
    """Set the password and end every session but `keep`; a pending email change is dropped, as the new
    password is how an owner takes an account back. The notice for the account's address, to send with the change."""
    user.set_password(password)
    user.pending_email = None
    end_every_session(user, keep)
    void_mailed_tokens(user)  # a reset mailed before the change must not undo it
    return password_notice(user, how)


def request_email_change(user: User, email: str, proven: bool, actor_id: uuid.UUID) -> list[EmailMessage]:
    """Make `email` the address the user is moving to once it confirms; the mails to send with the change.

    The current address withdraws a pending change. Any other needs the caller's password (proven).
    """
    if email == user.email:
        user.pending_email = None
        return []
    if not proven:
        raise ValidationError("Required to change the email.", "current_password")
    taken_by_another = db.session.scalar(select(User.id).where(User.email == email)) is not None
    if taken_by_another and not current_app.config["REGISTRATION_ENUMERATION_SAFE"]:
        raise taken("email")
    # An earlier confirmation, to this address or another, is void. Spent rather than voided by the
    # generation, which would void the owner's reset tokens too: asking again and again for a change
    # must not keep the owner from taking the account back.
    spend_tokens(user.id, "verify_email")
    user.pending_email = email
    record("user.email_change_requested", actor_id, user.id, **{"from": user.email, "to": email})
    if taken_by_another:
        # To the caller, like any other change; but no token is minted, and the address's owner is told.
        return [address_taken_notice(email), email_change_notice(user)]
    return [email_change_mail(user), email_change_notice(user)]


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
