"""The audit namespace: admins read the trail, newest first, filtered and paged with a cursor."""

from typing import Any

from flask_restx import Resource
from sqlalchemy import Select, select

from app.extensions import api
from app.models import AuditEvent
from app.openapi import model, problems, query
from app.pagination import keyset_page
from app.schemas import AuditEventListQuerySchema, AuditEventPageSchema, load_query
from app.users import admin_only

ns = api.namespace("audit", description="The audit trail (admin)", path="/audit-events")
EVENT_PAGE_SCHEMA = AuditEventPageSchema()  # built once, as users.py says why
EVENT_LIST_QUERY = AuditEventListQuerySchema()


def event_list_query(args: dict[str, Any]) -> Select[AuditEvent]:
    """The events matching the filters; each filter has an index ending in (created_at, id)."""
    stmt = select(AuditEvent)
    for field in ("action", "actor_id", "target_id"):
        if field in args:
            stmt = stmt.where(getattr(AuditEvent, field) == args[field])
    return stmt


@ns.route("")
class AuditEventList(Resource):
    @admin_only
    @ns.doc(params=query(AuditEventListQuerySchema))
    @ns.response(200, "A page of events; a Link header points to the next", model(AuditEventPageSchema))
    @problems(401, 403, 422)
    def get(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """List audit events (admin), newest first: filter by action, actor or target."""
        args = {**load_query(EVENT_LIST_QUERY), "sort": "-created_at"}  # newest first, always
        page, headers = keyset_page(event_list_query(args), AuditEvent.created_at, args, "audit_audit_event_list")
        return EVENT_PAGE_SCHEMA.dump(page), 200, headers
