"""Account models: users, their refresh sessions, revoked access tokens, and mailed single-use tokens."""

import unicodedata
import uuid
from contextlib import suppress
from datetime import datetime, timedelta

import idna
from flask import current_app
from sqlalchemy import CheckConstraint, ColumnElement, ForeignKey, Index, String, update
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.core.database import Model, UTCDateTime, postgres_only, utcnow
from app.core.extensions import db
from app.core.hashing import hash_password, hashing_slot, needs_rehash, verify_password

ROLES = ("user", "admin")


class User(Model):
    __tablename__ = "users"
    # An index for every list filter, so that none scans the table (the plans: bench/README.md). role and
    # is_active lead, then the default order: a partial index on the rare value alone would not help the
    # common one when its rows cluster, e.g. the oldest accounts deactivated together. The trigram (GIN)
    # indexes serve LIKE and ILIKE '%term%' for terms of 3 characters or more.
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES}", name="role_valid"),
        Index(None, "created_at", "id"),
        Index(None, "role", "created_at", "id"),
        Index(None, "is_active", "created_at", "id"),
        postgres_only(
            Index("ix_users_email_trgm", "email", postgresql_using="gin", postgresql_ops={"email": "gin_trgm_ops"})
        ),
        postgres_only(
            Index(
                "ix_users_display_name_trgm",
                "display_name",
                postgresql_using="gin",
                postgresql_ops={"display_name": "gin_trgm_ops"},
            )
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    is_active: Mapped[bool] = mapped_column(default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An address the user asked to move to: it becomes `email` only once a token mailed to it comes back.
    # Until then login and password resets go by `email`, so a stolen access token cannot move the account.
    pending_email: Mapped[str | None] = mapped_column(String(254))
    # Moves on when every session must end (a new password, the account disabled). A session carries the
    # value it was made under and works only while they match, so a login that read the old password
    # before the change and wrote its session after it still makes a session that never works.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # The same for mailed tokens: moved on by a new password, a confirmed new address and disabling the
    # account, so that a token is void for good, not only until its address is the account's again.
    mail_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Bumped by SQLAlchemy on every UPDATE, which also checks the old value: a concurrent
    # writer who read an older version gets StaleDataError (412) instead of a lost update.
    version: Mapped[int] = mapped_column(server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as declared)

    @validates("email")
    def _normalise_email(self, _key: str, email: str) -> str:
        # Stored lower-case so the plain unique constraint is case-insensitive everywhere.
        email = normalise_email(email)
        if self.email is not None and email != self.email:
            self.email_verified_at = None  # a new address is unproven until its owner uses a mailed token
        return email

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        """Verify a password, upgrading the stored hash when the parameters changed."""
        with hashing_slot():  # one slot for the check and the rehash
            if not verify_password(self.password_hash, password):
                return False
            if needs_rehash(self.password_hash):
                self.set_password(password)
            return True


def normalise_email(email: str) -> str:
    """The one stored form of an address, so that one mailbox is one account however it is spelt: NFKC
    (fullwidth letters, ligatures, decomposed accents fold to their plain form), lower case, and the
    domain in its IDNA ASCII form (UTS 46: Unicode and punycode spellings of a domain are one). The local
    part is case-folded too, as nearly every mail provider treats it; cross-script look-alikes (a Cyrillic
    "\u0430") stay distinct, as they can be another mailbox. Text that is no address is left for the schema's
    validation to refuse."""
    email = unicodedata.normalize("NFKC", email.strip()).lower()
    local, at, domain = email.rpartition("@")
    if not at or not domain:
        return email
    with suppress(idna.IDNAError, UnicodeError):  # not a valid domain: the schema's validation refuses it
        domain = idna.encode(domain, uts46=True).decode("ascii")
    return f"{local}@{domain}"


def email_search_term(term: str) -> str:
    """A list filter's email substring in the stored form: NFKC and lower case, and what follows an @
    as an IDNA domain where it is one."""
    term = unicodedata.normalize("NFKC", term).lower()
    if "@" in term:
        return normalise_email(term)
    return term


class RefreshSession(Model):
    """One login: a family of rotating refresh tokens of which only current_jti is valid."""

    __tablename__ = "refresh_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    current_jti: Mapped[str] = mapped_column(String(36))
    # The token the last refresh rotated, and when: for REFRESH_GRACE_SECONDS it still gets a pair of this
    # session, so a client refreshing twice at once (two tabs, a retry) keeps its session.
    previous_jti: Mapped[str | None] = mapped_column(String(36))
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    generation: Mapped[int] = mapped_column(default=0, server_default="0")  # the user's session_generation at login
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(45))


class RevokedToken(Model):
    """An access token revoked before its expiry; rows past expires_at can be purged."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def idle_since() -> datetime:
    """Sessions whose refresh token was last used before this have been idle too long (SESSION_IDLE_MINUTES)."""
    return utcnow() - timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def end_sessions(*where: ColumnElement[bool]) -> None:
    """Revoke the live sessions that match the conditions (their tokens fail on next use)."""
    db.session.execute(
        update(RefreshSession).where(RefreshSession.revoked_at.is_(None), *where).values(revoked_at=utcnow())
    )


def void_mailed_tokens(user: User) -> None:
    """Every token mailed to the user so far stops working for good, those being minted at this moment
    included (the caller commits)."""
    user.mail_generation += 1


def end_every_session(user: User, keep: uuid.UUID | None = None) -> None:
    """End every session of the user but `keep`, those a login is making at this moment included: they
    carry the session_generation that this moves on from (the caller commits)."""
    user.session_generation += 1
    end_sessions(RefreshSession.user_id == user.id, *([RefreshSession.id != keep] if keep else []))
    if keep:
        db.session.execute(
            update(RefreshSession).where(RefreshSession.id == keep).values(generation=user.session_generation)
        )


class AccountToken(Model):
    """A single-use token mailed to a user; only its SHA-256 is stored, so a database leak reveals none."""

    __tablename__ = "account_tokens"
    __table_args__ = (CheckConstraint("purpose IN ('password_reset', 'verify_email')", name="purpose_valid"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    # The address the token was sent to, and the user's mail_generation then: it works only while the
    # account still has that address (or is moving to it) and the generation has not moved on.
    email: Mapped[str] = mapped_column(String(254))
    generation: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
