from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.audit_event import AuditEvent


T = TypeVar("T", bound="AuditEventPage")


@_attrs_define
class AuditEventPage:
    """
    Attributes:
        next_cursor (None | str): Pass as cursor for the next page; null on the last.
        items (list[AuditEvent]):
    """

    next_cursor: None | str
    items: list[AuditEvent]

    def to_dict(self) -> dict[str, Any]:
        next_cursor: None | str
        next_cursor = self.next_cursor

        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "next_cursor": next_cursor,
                "items": items,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.audit_event import AuditEvent  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_next_cursor(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        next_cursor = _parse_next_cursor(d.pop("next_cursor"))

        items = []
        _items = d.pop("items")
        for items_item_data in _items:
            items_item = AuditEvent.from_dict(items_item_data)

            items.append(items_item)

        audit_event_page = cls(
            next_cursor=next_cursor,
            items=items,
        )

        return audit_event_page
