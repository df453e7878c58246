from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="MfaStatus")


@_attrs_define
class MfaStatus:
    """
    Attributes:
        enabled (bool):
        enabled_at (datetime.datetime | None):
        recovery_codes_left (int): Unused recovery codes.
    """

    enabled: bool
    enabled_at: datetime.datetime | None
    recovery_codes_left: int

    def to_dict(self) -> dict[str, Any]:
        enabled = self.enabled

        enabled_at: None | str
        if isinstance(self.enabled_at, datetime.datetime):
            enabled_at = self.enabled_at.isoformat()
        else:
            enabled_at = self.enabled_at

        recovery_codes_left = self.recovery_codes_left

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "enabled": enabled,
                "enabled_at": enabled_at,
                "recovery_codes_left": recovery_codes_left,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        enabled = d.pop("enabled")

        def _parse_enabled_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                enabled_at_type_0 = datetime.datetime.fromisoformat(data)

                return enabled_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        enabled_at = _parse_enabled_at(d.pop("enabled_at"))

        recovery_codes_left = d.pop("recovery_codes_left")

        mfa_status = cls(
            enabled=enabled,
            enabled_at=enabled_at,
            recovery_codes_left=recovery_codes_left,
        )

        return mfa_status
