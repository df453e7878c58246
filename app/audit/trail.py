"""The audit trail: record() adds an event to the transaction of the change it describes."""

import uuid
from typing import Any

from flask import has_request_context, request

from app.audit.models import AUDIT_ACTIONS, AuditEvent
from app.core.errors import request_id
from app.core.extensions import db
from app.core.logs import security_event


def record(action: str, actor_id: uuid.UUID | None, target_id: uuid.UUID | None, **details: Any) -> None:
    """Add an event to the session: it commits with the change, or rolls back with it."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")  # a typo would hide events from the filter
    in_request = has_request_context()
    db.session.add(
        AuditEvent(
            action=action,
            actor_id=actor_id,
            target_id=target_id,
            ip=request.remote_addr if in_request else None,
            request_id=request_id() if in_request else None,
            details=details or None,
        )
    )
    # The log line is written now, whatever becomes of the transaction: an attempt is worth knowing about.
    ids = {"actor_id": str(actor_id) if actor_id else None, "target_id": str(target_id) if target_id else None}
    security_event(action, **ids, details=details or None)
