from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="NewRecoveryCodes")


@_attrs_define
class NewRecoveryCodes:
    """
    Attributes:
        recovery_codes (list[str]): Single-use codes for when the authenticator is lost; shown this once only.
    """

    recovery_codes: list[str]

    def to_dict(self) -> dict[str, Any]:
        recovery_codes = self.recovery_codes

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "recovery_codes": recovery_codes,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        recovery_codes = cast(list[str], d.pop("recovery_codes"))

        new_recovery_codes = cls(
            recovery_codes=recovery_codes,
        )

        return new_recovery_codes
