"""The audit namespace: admins read the trail, newest first, filtered and paged with a cursor."""

from typing import Any

from sqlalchemy import Select, select

from app.audit.models import AuditEvent
from app.audit.schemas import AuditEventListQuerySchema, AuditEventPageSchema
from app.toolkit import Namespace, Resource, admin_only, keyset_page, operation, query, response

ns = Namespace("audit", description="The audit trail (admin)", path="/audit-events")


def event_list_query(args: dict[str, Any]) -> Select[AuditEvent]:
    """The events matching the filters; each filter has an index ending in (created_at, id)."""
    stmt = select(AuditEvent)
    for field in ("action", "actor_id", "target_id"):
        if field in args:
            stmt = stmt.where(getattr(AuditEvent, field) == args[field])
    return stmt


@ns.route("")
class AuditEventList(Resource):
    @operation("listAuditEvents")
    @admin_only
    @query(AuditEventListQuerySchema)
    @response(AuditEventPageSchema, description="A page of events; a Link header points to the next")
    def get(self, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """List audit events (admin), newest first: filter by action, actor or target."""
        return keyset_page(event_list_query(args), AuditEvent.created_at, args, descending=True)
