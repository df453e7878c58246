from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="Health")


@_attrs_define
class Health:
    """
    Attributes:
        status (str):  Example: ok.
        degraded (list[str] | Unset): What the app serves without, when something it can do without is down. Example:
            ['redis_unavailable'].
    """

    status: str
    degraded: list[str] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        status = self.status

        degraded: list[str] | Unset = UNSET
        if not isinstance(self.degraded, Unset):
            degraded = self.degraded

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "status": status,
            }
        )
        if degraded is not UNSET:
            field_dict["degraded"] = degraded

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        status = d.pop("status")

        degraded = cast(list[str], d.pop("degraded", UNSET))

        health = cls(
            status=status,
            degraded=degraded,
        )

        return health
