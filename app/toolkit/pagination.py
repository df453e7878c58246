"""Keyset pagination: opaque cursors, and one page plus the Link header to the next."""

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import request, url_for
from marshmallow import ValidationError
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.core.extensions import db
from app.toolkit.schemas import storable


def encode_cursor(sort: str, row: Any) -> str:
    """An opaque token for 'after this row, in this sort order'."""
    value = getattr(row, sort.lstrip("-"))
    raw = json.dumps([sort, value.isoformat() if isinstance(value, datetime) else value, str(row.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _typed(value: Any, python_type: type) -> Any:
    """A cursor's sort value as the sort column's type; ValueError if it is not one we could have written."""
    if python_type is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:  # we write every timestamp with its offset
            raise ValueError("naive timestamp")
        return moment.astimezone(UTC)  # OverflowError at the ends of the calendar
    if python_type is str and isinstance(value, str):
        return storable(value)
    if python_type is int and type(value) is int and -(2**63) <= value < 2**63:  # not a bool; fits a BIGINT
        return value
    raise ValueError(f"not a {python_type.__name__}")


def decode_cursor(cursor: str, sort: str, column: InstrumentedAttribute[Any]) -> tuple[Any, uuid.UUID]:
    """The (sort value, id) a page starts after, typed as the columns are; 422 unless the cursor is
    one of ours for this sort. Nothing else reaches the query: a crafted cursor is only base64 JSON."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(payload, list) and len(payload) == 3 and payload[0] == sort):
            raise ValueError("not a cursor for this sort order")
        _, value, row_id = payload
        if not isinstance(row_id, str):
            raise ValueError("id is not a string")
        return _typed(value, column.type.python_type), uuid.UUID(row_id)
    except (ValueError, OverflowError, ValidationError) as e:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise ValidationError("Invalid cursor.", "cursor") from e


def keyset_page(
    stmt: Select[Any], column: InstrumentedAttribute[Any], args: dict[str, Any], *, descending: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """One page of stmt ordered by (column, id), ascending or descending, after args["cursor"].

    No OFFSET and no COUNT(*): a deep page costs what the first one does, given an index on
    (column, id). One row more than asked says whether a next page exists. The Link header
    points to the same endpoint with the same arguments and the next cursor.
    """
    sort, limit = ("-" if descending else "") + column.key, args["limit"]
    id_column = column.class_.id
    if "cursor" in args:
        key, after = tuple_(column, id_column), tuple_(*decode_cursor(args["cursor"], sort, column))
        stmt = stmt.where(key < after if descending else key > after)
    order = (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    rows = list(db.session.scalars(stmt.order_by(*order).limit(limit + 1)))
    items, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(sort, items[-1]) if more else None
    headers = {}
    if next_cursor:
        next_url = url_for(request.endpoint or "", **{**request.args.to_dict(), "cursor": next_cursor}, _external=True)
        headers["Link"] = f'<{next_url}>; rel="next"'
    return {"items": items, "next_cursor": next_cursor}, headers
