"""The audit trail's payloads."""

from marshmallow import Schema, fields, validate

from app.audit.models import AUDIT_ACTIONS
from app.toolkit.schemas import ListQuerySchema, PageSchema, page_items


class AuditEventSchema(Schema):
    id = fields.UUID(required=True)
    created_at = fields.DateTime(required=True)
    action = fields.String(required=True, metadata={"enum": list(AUDIT_ACTIONS)})
    actor_id = fields.UUID(required=True, allow_none=True, metadata={"description": "Who did it; null when anonymous."})
    target_id = fields.UUID(required=True, allow_none=True, metadata={"description": "The user it was done to."})
    ip = fields.String(required=True, allow_none=True)
    request_id = fields.String(required=True, allow_none=True)
    details = fields.Dict(keys=fields.String(), required=True, allow_none=True)


class AuditEventListQuerySchema(ListQuerySchema):
    action = fields.String(validate=validate.OneOf(AUDIT_ACTIONS))
    actor_id = fields.UUID()
    target_id = fields.UUID()


class AuditEventPageSchema(PageSchema):
    items = page_items(AuditEventSchema)
