"""The second factor: TOTP secrets (RFC 6238, via pyotp), recovery codes and login challenges, and the
checks that sensitive changes and the second login step make with them."""

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage

import pyotp
from flask import Response, current_app, g, request
from marshmallow import ValidationError
from sqlalchemy import ForeignKey, String, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.exceptions import HTTPException

from app.accounts.models import User
from app.accounts.tokens import digest, reset_hint
from app.audit.trail import record
from app.core.database import Model, UTCDateTime, utcnow
from app.core.errors import ApiError
from app.core.extensions import db
from app.core.mail import message
from app.core.ratelimit import caller_key, limit

RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread from paper
CHALLENGE_ATTEMPTS = 5  # wrong codes one challenge takes before it dies; a new one needs the password again
CODE_FIELDS = ("code", "mfa_code")

NOTICE = """Two-step verification (MFA) was turned off for your account at {app}
{how}.

You now log in with your password alone. If this was not you or expected, reset your password now
({reset}) and turn MFA on again.
"""


class MfaFactor(Model):
    """A user's TOTP secret: pending until a first code confirms it, then MFA is on."""

    __tablename__ = "mfa_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The time step of the last code accepted: a code is only good for a later step, so one seen
    # over a shoulder or in a proxy's log cannot be replayed inside its 30-second window.
    last_step: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecoveryCode(Model):
    """A single-use code for when the authenticator is lost; only its keyed hash is stored."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MfaChallenge(Model):
    """The first login step passed: what the second step must present, once, with a code."""

    __tablename__ = "mfa_challenges"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The user's session_generation when the password was checked: a new password voids the challenge.
    generation: Mapped[int] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def factor(user_id: uuid.UUID) -> MfaFactor | None:
    return db.session.get(MfaFactor, user_id)


def mfa_enabled(user_id: uuid.UUID) -> bool:
    found = factor(user_id)
    return found is not None and found.confirmed_at is not None


def recovery_codes_left(user_id: uuid.UUID) -> int:
    count = select(func.count()).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    return db.session.scalar(count) or 0


# --- enrolment -------------------------------------------------------------------------------------


def begin_enrolment(user: User) -> dict[str, str]:
    """A fresh secret, pending until confirmed (a pending one is replaced); 409 if MFA is already on."""
    found = factor(user.id)
    if found is not None and found.confirmed_at is not None:
        raise ApiError(409, "mfa_enabled", "MFA is already on; disable it first to enrol a new authenticator.")
    secret = pyotp.random_base32()
    if found is None:
        db.session.add(MfaFactor(user_id=user.id, secret=secret))
    else:
        found.secret, found.last_step, found.created_at = secret, None, utcnow()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=current_app.config["APP_NAME"])
    record("mfa.enrolment_started", user.id, user.id)
    return {"secret": secret, "provisioning_uri": uri}


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Turn MFA on with a first valid code; the recovery codes, in clear this once."""
    found = factor(user.id)
    if found is None or found.confirmed_at is not None:
        raise ApiError(409, "mfa_not_pending", "No enrolment is waiting for a code: start one first.")
    if not accept_totp(found, code):
        g.mfa_refused = True
        raise ValidationError("Incorrect code.", "code")
    found.confirmed_at = utcnow()
    record("mfa.enabled", user.id, user.id)
    return new_recovery_codes(user.id)


def new_recovery_codes(user_id: uuid.UUID) -> list[str]:
    """Replace the user's recovery codes; the new ones, in clear this once."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user_id, code_hash=keyed_hash(code)) for code in codes)
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def turn_off(user: User) -> None:
    """Remove the factor, the recovery codes and open challenges (the caller audits and commits)."""
    for model in (MfaFactor, RecoveryCode, MfaChallenge):
        db.session.execute(delete(model).where(model.user_id == user.id))


def off_notice(user: User, how: str) -> EmailMessage:
    """Tell the account's address that MFA was turned off (sent after commit)."""
    text = NOTICE.format(app=current_app.config["APP_NAME"], how=how, reset=reset_hint())
    return message(user.email, "Two-step verification was turned off", text)


# --- codes -----------------------------------------------------------------------------------------


def keyed_hash(code: str) -> str:
    """HMAC-SHA256 of a normalised recovery code under SECRET_KEY. A code carries 50 random bits, so a
    slow hash would buy nothing against guessing, and a deterministic one lets one indexed lookup find
    it; the key means a copy of the database alone cannot even try."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, normalise_code(code).encode(), hashlib.sha256).hexdigest()


def normalise_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def accept_totp(found: MfaFactor, code: str) -> bool:
    """Whether the code is the TOTP of the current step or a neighbour (clock drift) and of a later
    step than the last accepted one; if so it is now the last (compare-and-swap: of two requests
    racing with one code, one wins)."""
    code = normalise_code(code)
    if not (len(code) == 6 and code.isdigit()):
        return False
    totp = pyotp.TOTP(found.secret)
    now = int(time.time()) // totp.interval
    for step in (now - 1, now, now + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            newer = (MfaFactor.last_step.is_(None)) | (MfaFactor.last_step < step)
            won = db.session.execute(
                update(MfaFactor)
                .where(MfaFactor.user_id == found.user_id, newer)
                .values(last_step=step)
                .returning(MfaFactor.user_id)
            ).first()
            return won is not None
    return False


def accept_recovery_code(user_id: uuid.UUID, code: str) -> bool:
    """Whether the code is one of the user's unused recovery codes; if so it is now used (compare-and-swap)."""
    spent = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == keyed_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .returning(RecoveryCode.id)
    ).first()
    if spent is None:
        return False
    record("mfa.recovery_code_used", user_id, user_id, left=recovery_codes_left(user_id))
    return True


def check_code(user_id: uuid.UUID, code: str) -> bool:
    """A TOTP code (6 digits) or a recovery code of a user with MFA on, spent if right."""
    found = factor(user_id)
    if found is None or found.confirmed_at is None:
        return False
    return accept_totp(found, code) if normalise_code(code).isdigit() else accept_recovery_code(user_id, code)


def prove_code(user: User, code: str | None, field: str = "code") -> None:
    """When the user has MFA on, 422 unless `code` is a current one: what a sensitive change takes beyond
    the password. A wrong one counts against RATELIMIT_MFA_ACCOUNT (limit_code_guesses)."""
    if not mfa_enabled(user.id):
        return
    if not code:
        raise ValidationError("Required: MFA is on; send a code from your authenticator or a recovery code.", field)
    if not check_code(user.id, code):
        g.mfa_refused = True
        raise ValidationError("Incorrect code.", field)


# --- the login challenge ---------------------------------------------------------------------------


def mfa_required(user: User) -> ApiError:
    """Open a challenge for the second step, committed now; the 403 that carries it."""
    token = secrets.token_urlsafe(32)
    minutes = current_app.config["MFA_CHALLENGE_MINUTES"]
    db.session.add(
        MfaChallenge(
            token_hash=digest(token),
            user_id=user.id,
            generation=user.session_generation,  # as read with the password hash it was checked against
            expires_at=utcnow() + timedelta(minutes=minutes),
        )
    )
    record("login.mfa_required", user.id, user.id)
    db.session.commit()
    detail = (
        f"Password accepted; now send mfa_token with a code to POST /api/v1/auth/login/mfa within {minutes} minutes."
    )
    return ApiError(403, "mfa_required", detail, extensions={"mfa_token": token})


def challenge_invalid() -> ApiError:
    return ApiError(401, "mfa_token_invalid", "This challenge is expired, used or void; log in again.")


def redeem_challenge(token: str, code: str) -> User:
    """The user whose challenge this is, the challenge now spent, if the code is right; 401 otherwise.
    A challenge dies after CHALLENGE_ATTEMPTS wrong codes, so the password is needed again."""
    row = db.session.scalar(select(MfaChallenge).where(MfaChallenge.token_hash == digest(token)))
    user = db.session.get(User, row.user_id) if row else None
    if (
        row is None
        or user is None
        or row.used_at is not None
        or row.expires_at <= utcnow()
        or row.attempts >= CHALLENGE_ATTEMPTS
        or row.generation != user.session_generation  # a new password since the first step
        or not user.is_active
    ):
        raise challenge_invalid()
    if not check_code(user.id, code):
        g.mfa_refused = True
        attempts = db.session.scalar(
            update(MfaChallenge)
            .where(MfaChallenge.id == row.id)
            .values(attempts=MfaChallenge.attempts + 1)
            .returning(MfaChallenge.attempts)
        )
        record("login.mfa_failed", None, user.id, attempts=attempts)
        db.session.commit()
        left = max(0, CHALLENGE_ATTEMPTS - (attempts or CHALLENGE_ATTEMPTS))
        raise ApiError(401, "invalid_code", f"The code is incorrect; this challenge takes {left} more.")
    spent = db.session.execute(
        update(MfaChallenge)
        .where(MfaChallenge.id == row.id, MfaChallenge.used_at.is_(None))
        .values(used_at=utcnow())
        .returning(MfaChallenge.id)
    ).first()
    if spent is None:  # a request racing with the same challenge won
        raise challenge_invalid()
    return user


# --- the limit on wrong codes ----------------------------------------------------------------------


def code_refused(_response: Response) -> bool:
    """Whether this request's code was wrong: all that RATELIMIT_MFA_ACCOUNT counts."""
    return bool(g.get("mfa_refused"))


def _body() -> object:
    try:
        return request.get_json(silent=True)
    except (RecursionError, HTTPException):
        return None


def sends_no_code() -> bool:
    """Whether the body carries no code at all: no guess to count or refuse."""
    body = _body()
    return not (isinstance(body, dict) and any(name in body for name in CODE_FIELDS))


def code_account_key() -> str:
    """Rate-limit key: the account the code is for. The caller's token subject, or on the second login
    step the challenge's user (one indexed lookup), so new challenges do not reset the count. The same
    key as caller_key, so guesses at login and at sensitive changes add up."""
    body = _body()
    token = body.get("mfa_token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        return caller_key()
    user_id = db.session.scalar(select(MfaChallenge.user_id).where(MfaChallenge.token_hash == digest(token)))
    return f"user:{user_id}" if user_id else "mfa:unknown"  # an unknown challenge is refused, never counted


# Wrong codes per account, on every route that checks one: with a few per window a 6-digit code
# (3 of 10^6 accepted, counting the neighbour steps) is out of reach of guessing.
limit_code_guesses = limit(
    "RATELIMIT_MFA_ACCOUNT", code_account_key, counts=code_refused, exempt_when=sends_no_code, shared=True
)
