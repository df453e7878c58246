"""Schema pieces every resource uses: text fields, list arguments and pages."""

from collections.abc import Sequence
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate


def storable(text: str) -> str:
    """The text, if every database and hash can take it: no NUL (Postgres refuses it) and no lone
    surrogate (JSON's "\\ud800" decodes to one, and it has no UTF-8 encoding); else ValidationError."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValidationError("Must be valid Unicode: no lone surrogates.") from None
    return text


class Text(fields.String):
    """A string that refuses what no database or hash can take (see storable)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return storable(super()._deserialize(value, attr, data, **kwargs))


class Bool(fields.Boolean):
    """A JSON boolean: true or false, never 0, 1 or "yes" (which marshmallow's Boolean takes)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):  # 0 == False and 1 == True, so the truthy sets cannot tell
            raise self.make_error("invalid", input=value)
        return value


class Choice(fields.String):
    """One of a fixed set of strings, documented once as the named enum `enum_name` (Role, SortOrder...).

    Values that start with a letter make good names in generated clients (Role.ADMIN).
    """

    def __init__(self, enum_name: str, choices: Sequence[str], **kwargs: Any) -> None:
        super().__init__(validate=validate.OneOf(choices), metadata={"enum": list(choices)}, **kwargs)
        self.enum_name, self.choices = enum_name, tuple(choices)


class ListQuerySchema(Schema):
    """The arguments of every list: a page size and the cursor of the previous page."""

    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = Text(validate=validate.Length(max=512), metadata={"description": "next_cursor of the previous page."})


class PageSchema(Schema):
    """A page of a list; subclasses name what the items are with `items = page_items(ItemSchema)`."""

    next_cursor = fields.String(
        allow_none=True, required=True, metadata={"description": "Pass as cursor for the next page; null on the last."}
    )


def page_items(schema: type[Schema]) -> fields.List[Any]:
    return fields.List(fields.Nested(schema), required=True)
