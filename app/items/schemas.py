"""The items' payloads: what a client sends and gets back."""

from marshmallow import Schema, fields, validate

from app.toolkit import Bool, ListQuerySchema, PageSchema, Text, page_items


class ItemInputSchema(Schema):
    """What a client sends to create an item (all of it) or change one (any of it)."""

    name = Text(required=True, validate=validate.Length(min=1, max=100), metadata={"example": "Buy milk"})
    notes = Text(load_default="", validate=validate.Length(max=2000))
    done = Bool(load_default=False)


class ItemSchema(Schema):
    """What a client gets back."""

    id = fields.UUID(required=True)
    owner_id = fields.UUID(required=True)
    name = fields.String(required=True)
    notes = fields.String(required=True)
    done = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class ItemListQuerySchema(ListQuerySchema):
    done = fields.Boolean(metadata={"description": "Only items that are (true) or are not (false) done."})


class ItemPageSchema(PageSchema):
    items = page_items(ItemSchema)
