"""The audit trail's table, and the actions it knows."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Model, UTCDateTime, utcnow

AUDIT_ACTIONS = (
    "user.registered",
    "user.created",
    "login.succeeded",
    "login.failed",
    "password.changed",
    "password.reset_requested",
    "password.reset",
    "email.verified",
    "user.email_change_requested",
    "user.email_changed",
    "user.role_changed",
    "user.activation_changed",
    "user.deleted",
    "session.revoked",
    "sessions.revoked_all",
    "refresh_token.reused",
    "login.mfa_required",
    "login.mfa_failed",
    "mfa.enrolment_started",
    "mfa.enabled",
    "mfa.disabled",
    "mfa.reset",
    "mfa.recovery_codes_regenerated",
    "mfa.recovery_code_used",
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
