from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define

T = TypeVar("T", bound="Item")


@_attrs_define
class Item:
    """
    Attributes:
        id (UUID):
        owner_id (UUID):
        name (str):
        notes (str):
        done (bool):
        created_at (datetime.datetime):
        updated_at (datetime.datetime):
    """

    id: UUID
    owner_id: UUID
    name: str
    notes: str
    done: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        id = str(self.id)

        owner_id = str(self.owner_id)

        name = self.name

        notes = self.notes

        done = self.done

        created_at = self.created_at.isoformat()

        updated_at = self.updated_at.isoformat()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "owner_id": owner_id,
                "name": name,
                "notes": notes,
                "done": done,
                "created_at": created_at,
                "updated_at": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = UUID(d.pop("id"))

        owner_id = UUID(d.pop("owner_id"))

        name = d.pop("name")

        notes = d.pop("notes")

        done = d.pop("done")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        item = cls(
            id=id,
            owner_id=owner_id,
            name=name,
            notes=notes,
            done=done,
            created_at=created_at,
            updated_at=updated_at,
        )

        return item
