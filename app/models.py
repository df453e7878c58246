"""Database models: users, their refresh sessions, revoked access tokens, mailed tokens, the audit trail."""

import contextlib
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    String,
    event,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column, validates
from sqlalchemy.types import TypeDecorator

from app.extensions import Base, db
from app.hashslots import hashing_slot

# db.Model is made at run time, so type checkers cannot see it as a class; it is a Base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model

# One of OWASP's equivalent argon2id minimums (m=7 MiB, t=5, p=1): as strong as m=19 MiB, t=2, and a
# little faster, but each hash holds 7 MiB instead of 19 at its peak, in every worker. Hashes made with
# other parameters still verify, and are redone with these at the next successful login.
hasher = PasswordHasher(time_cost=5, memory_cost=7168, parallelism=1)
ROLES = ("user", "admin")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked per connection. Known by its
    # class's module: importing sqlite3 to compare would cost every Postgres worker about 1 MiB.
    if type(dbapi_connection).__module__ == "sqlite3":
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def postgres_only(index: Index) -> Index:
    """Mark an index that only Postgres can have (GIN): DDL and autogenerate leave it out elsewhere."""
    index.info["postgres_only"] = True
    return index.ddl_if(dialect="postgresql")


def exists_on(obj: Any, dialect: str) -> bool:
    """Whether a schema object belongs on this kind of database (alembic's include_object test)."""
    return dialect == "postgresql" or not obj.info.get("postgres_only", False)


class User(Model):
    __tablename__ = "users"
    # An index for every list filter, so that none scans the table (the plans: bench/README.md). role and
    # is_active lead, then the default order: a partial index on the rare value alone would not help the
    # common one when its rows cluster, e.g. the oldest accounts deactivated together. The trigram (GIN)
    # indexes serve LIKE and ILIKE '%term%' for terms of 3 characters or more.
    __table_args__ = (
        CheckConstraint("role IN ('user', 'admin')", name="role_valid"),
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
        with hashing_slot():
            self.password_hash = hasher.hash(password)

    def check_password(self, password: str) -> bool:
        """Verify a password, upgrading the stored hash when the parameters changed."""
        with hashing_slot():
            try:
                hasher.verify(self.password_hash, password)
            except (VerifyMismatchError, InvalidHashError):
                return False
            if hasher.check_needs_rehash(self.password_hash):
                self.set_password(password)  # in the slot this request holds
            return True


def normalise_email(email: str) -> str:
    return email.strip().lower()


@cache
def _dummy_hash() -> str:
    return hasher.hash("not a real password, only spends the same time")


def spend_one_hash(password: str) -> None:
    """Cost an unknown-account login exactly one hash, and a slot, so timing does not reveal accounts."""
    with hashing_slot(), contextlib.suppress(VerifyMismatchError):
        hasher.verify(_dummy_hash(), password)


class RefreshSession(Model):
    """One login: a family of rotating refresh tokens of which only current_jti is valid."""

    __tablename__ = "refresh_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    current_jti: Mapped[str] = mapped_column(String(36))
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


def end_sessions(*where: ColumnElement[bool]) -> None:
    """Revoke the live sessions that match the conditions (their tokens fail on next use)."""
    db.session.execute(
        update(RefreshSession).where(RefreshSession.revoked_at.is_(None), *where).values(revoked_at=utcnow())
    )


class AccountToken(Model):
    """A single-use token mailed to a user; only its SHA-256 is stored, so a database leak reveals none."""

    __tablename__ = "account_tokens"
    __table_args__ = (CheckConstraint("purpose IN ('password_reset', 'verify_email')", name="purpose_valid"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    # The address the token was sent to: once the user's email changes, the token is void.
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


AUDIT_ACTIONS = (
    "user.registered",
    "user.created",
    "login.succeeded",
    "login.failed",
    "password.changed",
    "password.reset_requested",
    "password.reset",
    "email.verified",
    "user.email_changed",
    "user.role_changed",
    "user.activation_changed",
    "user.deleted",
    "session.revoked",
    "sessions.revoked_all",
    "refresh_token.reused",
)


class AuditEvent(Model):
    """Who did what to whom, when and from where; written in the same transaction as the change."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "created_at", "id"),
        Index(None, "action", "created_at", "id"),
        Index(None, "actor_id", "created_at", "id"),
        Index(None, "target_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(40))
    # No foreign keys: the trail must outlive the users it mentions.
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    target_id: Mapped[uuid.UUID | None] = mapped_column()
    ip: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
