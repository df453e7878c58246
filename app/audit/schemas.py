"""The audit trail's payloads."""

from marshmallow import Schema, fields

from app.audit.models import AUDIT_ACTIONS
from app.toolkit.schemas import Choice, ListQuerySchema, PageSchema, page_items


class AuditEventSchema(Schema):
    id = fields.UUID(required=True)
    created_at = fields.DateTime(required=True)
    action = Choice("AuditAction", AUDIT_ACTIONS, required=True)
    actor_id = fields.UUID(required=True, allow_none=True, metadata={"description": "Who did it; null when anonymous."})
    target_id = fields.UUID(required=True, allow_none=True, metadata={"description": "The user it was done to."})
    ip = fields.String(required=True, allow_none=True)
    request_id = fields.String(required=True, allow_none=True)
    details = fields.Dict(keys=fields.String(), required=True, allow_none=True)


class AuditEventListQuerySchema(ListQuerySchema):
    action = Choice("AuditAction", AUDIT_ACTIONS)
    actor_id = fields.UUID()
    target_id = fields.UUID()


class AuditEventPageSchema(PageSchema):
    items = page_items(AuditEventSchema)
