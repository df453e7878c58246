from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ItemInputPatch")


@_attrs_define
class ItemInputPatch:
    """
    Attributes:
        name (str | Unset):  Example: Buy milk.
        notes (str | Unset):
        done (bool | Unset):
    """

    name: str | Unset = UNSET
    notes: str | Unset = UNSET
    done: bool | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        notes = self.notes

        done = self.done

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if name is not UNSET:
            field_dict["name"] = name
        if notes is not UNSET:
            field_dict["notes"] = notes
        if done is not UNSET:
            field_dict["done"] = done

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name", UNSET)

        notes = d.pop("notes", UNSET)

        done = d.pop("done", UNSET)

        item_input_patch = cls(
            name=name,
            notes=notes,
            done=done,
        )

        return item_input_patch
