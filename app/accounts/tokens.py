"""Single-use tokens sent by mail (password reset, email verification) and the mails that carry them."""

import hashlib
import secrets
import uuid
from datetime import timedelta
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import select, update

from app.accounts.models import AccountToken, User
from app.core.database import utcnow
from app.core.errors import ApiError
from app.core.extensions import db
from app.core.mail import message

RESET_TEXT = """Someone, hopefully you, asked to reset the password of your account
at {app}.

{action}

It works once, for {minutes} minutes. If you did not ask for this, ignore this mail:
your password stays as it is.
"""

VERIFY_TEXT = """Please confirm that {email} is the address of your account
at {app}.

{action}

It works once, for {hours} hours.
"""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint(user: User | None, purpose: str, life: timedelta) -> str:
    """A fresh token; for a user, its hash is added to the session (the caller commits)."""
    token = secrets.token_urlsafe(32)
    if user is not None:
        db.session.add(
            AccountToken(
                token_hash=digest(token),
                user_id=user.id,
                purpose=purpose,
                email=user.email,
                expires_at=utcnow() + life,
            )
        )
    return token


def action(page: str, endpoint: str, token: str, extra: str = "") -> str:
    """The link to the web app when FRONTEND_URL is set, else how to call the API with the token."""
    if frontend := current_app.config["FRONTEND_URL"]:
        # In the fragment, which browsers never send to a server or put in a Referer.
        return f"Open this link:\n\n    {frontend.rstrip('/')}/{page}#token={token}"
    return f"Send this token{extra}\nto POST /api/v1/{endpoint}:\n\n    {token}"


def password_reset_mail(email: str, user: User | None) -> EmailMessage | None:
    """The reset mail for an account; for none, the same work and no mail, so timing tells nothing."""
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    token = mint(user, "password_reset", timedelta(minutes=minutes))
    text = RESET_TEXT.format(
        app=current_app.config["APP_NAME"],
        action=action("reset-password", "auth/password-reset/confirm", token, " with your new password"),
        minutes=minutes,
    )
    mail = message(email, "Reset your password", text)
    return mail if user is not None else None


def verification_mail(user: User) -> EmailMessage:
    """Add a token for the user's current address and write the mail that carries it there."""
    hours = current_app.config["EMAIL_VERIFICATION_HOURS"]
    token = mint(user, "verify_email", timedelta(hours=hours))
    text = VERIFY_TEXT.format(
        email=user.email,
        app=current_app.config["APP_NAME"],
        action=action("verify-email", "auth/verify-email", token),
        hours=hours,
    )
    return message(user.email, "Confirm your email address", text)


def spend_tokens(user_id: uuid.UUID, purpose: str) -> list[uuid.UUID]:
    """Mark the user's unused tokens of this kind used; the ids of those it marked."""
    spent = db.session.scalars(
        update(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None))
        .values(used_at=utcnow())
        .returning(AccountToken.id)
    )
    return list(spent)


def redeem(token: str, purpose: str) -> User:
    """The token's user, the token now spent (with its siblings); 400 if it is unknown, used or expired."""
    row = db.session.scalar(
        select(AccountToken).where(AccountToken.token_hash == digest(token), AccountToken.purpose == purpose)
    )
    user = db.session.get(User, row.user_id) if row else None
    if row is None or user is None or not user.is_active or row.email != user.email:
        raise ApiError(400, "token_invalid", "This token is not valid; ask for a new one.")
    if row.used_at is not None:
        raise ApiError(400, "token_used", "This token was already used, or a newer change replaced it.")
    if row.expires_at <= utcnow():
        raise ApiError(400, "token_expired", "This token has expired; ask for a new one.")
    # Compare-and-swap: of two requests racing with one token, only one finds it unused.
    if row.id not in spend_tokens(user.id, purpose):
        raise ApiError(400, "token_used", "This token was already used, or a newer change replaced it.")
    return user
