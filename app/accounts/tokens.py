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

EMAIL_CHANGE_TEXT = """Please confirm that {email} should become the address of your account
at {app}.

{action}

It works once, for {hours} hours. Until it is used, the account keeps its current address. If you
did not ask for this, ignore this mail.
"""

EMAIL_CHANGE_NOTICE = """Someone asked to change the address of your account at {app}
from this one to {masked}.

The change waits until the new address confirms it. Until then this address stays the account's,
for logging in and for password resets.

If it was not you, reset your password now: ask for a reset for this address
({reset}). The new password cancels the change and ends every session.
"""

REGISTRATION_NOTICE = """Someone tried to register a new account at {app} with this address,
which already has an account. No account was made, and yours is unchanged.

If it was you: you already have an account. Log in, or if you forgot the password, ask for a
reset for this address ({reset}).

If it was not you, you need not do anything.
"""

ADDRESS_TAKEN_NOTICE = """Someone asked to make this address the address of another account at {app},
but it already belongs to yours. Nothing was changed, and nothing will be unless you act.

If it was you, use another address for the other account, or delete one of the two accounts first.
If it was not you, you need not do anything.
"""

CHANGED_NOTICE = """The password of your account at {app} was {how}.

If it was not you, reset your password now: ask for a reset for this address
({reset}). The new password ends every session.
"""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint(user: User | None, purpose: str, life: timedelta, email: str | None = None) -> str:
    """A fresh token for the user's address (or `email`); for a user, its hash is added to the session
    (the caller commits)."""
    token = secrets.token_urlsafe(32)
    if user is not None:
        db.session.add(
            AccountToken(
                token_hash=digest(token),
                user_id=user.id,
                purpose=purpose,
                email=email or user.email,
                generation=user.mail_generation,
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
    return _confirmation(user, user.email, VERIFY_TEXT, "Confirm your email address")


def email_change_mail(user: User) -> EmailMessage:
    """For a change to user.pending_email: a token to confirm it, mailed there (the caller sends it, then commits)."""
    assert user.pending_email is not None
    return _confirmation(user, user.pending_email, EMAIL_CHANGE_TEXT, "Confirm your new email address")


def _confirmation(user: User, address: str, template: str, subject: str) -> EmailMessage:
    """A verify_email token bound to this address, in a mail to it."""
    hours = current_app.config["EMAIL_VERIFICATION_HOURS"]
    token = mint(user, "verify_email", timedelta(hours=hours), email=address)
    text = template.format(
        email=address,
        app=current_app.config["APP_NAME"],
        action=action("verify-email", "auth/verify-email", token),
        hours=hours,
    )
    return message(address, subject, text)


def email_change_notice(user: User) -> EmailMessage:
    """Tell the current address, which stays the account's until the change is confirmed, of the change."""
    assert user.pending_email is not None
    notice = EMAIL_CHANGE_NOTICE.format(
        app=current_app.config["APP_NAME"], masked=masked(user.pending_email), reset=reset_hint()
    )
    return message(user.email, "Your account's email address is changing", notice)


def registration_notice(owner: User) -> EmailMessage:
    """Tell an account's address that someone tried to register with it (REGISTRATION_ENUMERATION_SAFE)."""
    text = REGISTRATION_NOTICE.format(app=current_app.config["APP_NAME"], reset=reset_hint())
    return message(owner.email, "Someone tried to register with your address", text)


def address_taken_notice(email: str) -> EmailMessage:
    """Tell an account's address that another account asked to move to it (REGISTRATION_ENUMERATION_SAFE)."""
    text = ADDRESS_TAKEN_NOTICE.format(app=current_app.config["APP_NAME"])
    return message(email, "Someone tried to use your address for another account", text)


def password_notice(user: User, how: str) -> EmailMessage:
    """Tell the account's address that its password was changed or reset (the caller sends it with the change)."""
    text = CHANGED_NOTICE.format(app=current_app.config["APP_NAME"], how=how, reset=reset_hint())
    return message(user.email, "Your password was changed", text)


def masked(email: str) -> str:
    """Enough of an address for its owner to recognise it, not enough for a reader of the old mailbox to use."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'*' * (len(local) - 1)}@{domain}"


def reset_hint() -> str:
    """Where to ask for a password reset."""
    if frontend := current_app.config["FRONTEND_URL"]:
        return f"on {frontend.rstrip('/')}, or with POST /api/v1/auth/password-reset"
    return "POST /api/v1/auth/password-reset"


def spend_tokens(user_id: uuid.UUID, purpose: str) -> list[uuid.UUID]:
    """Mark the user's unused tokens of this kind used; the ids of those it marked."""
    spent = db.session.scalars(
        update(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None))
        .values(used_at=utcnow())
        .returning(AccountToken.id)
    )
    return list(spent)


def redeem(token: str, purpose: str) -> tuple[User, str]:
    """The token's user and the address it was mailed to, the token now spent (with its siblings); 400
    if it is unknown, used or expired, if its address is neither the account's nor, for a verification
    token, the one the account is moving to, or if a new password, address or disabling came since."""
    row = db.session.scalar(
        select(AccountToken).where(AccountToken.token_hash == digest(token), AccountToken.purpose == purpose)
    )
    user = db.session.get(User, row.user_id) if row else None
    addresses = {user.email, user.pending_email if purpose == "verify_email" else None} if user else set()
    if row is None or user is None or not user.is_active or row.email not in addresses:
        raise ApiError(400, "token_invalid", "This token is not valid; ask for a new one.")
    if row.used_at is not None or row.generation != user.mail_generation:
        raise ApiError(400, "token_used", "This token was already used, or a newer change replaced it.")
    if row.expires_at <= utcnow():
        raise ApiError(400, "token_expired", "This token has expired; ask for a new one.")
    # Compare-and-swap: of two requests racing with one token, only one finds it unused.
    if row.id not in spend_tokens(user.id, purpose):
        raise ApiError(400, "token_used", "This token was already used, or a newer change replaced it.")
    return user, row.email
