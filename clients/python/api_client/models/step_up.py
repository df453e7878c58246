from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="StepUp")


@_attrs_define
class StepUp:
    """
    Attributes:
        current_password (str): Your current password.
        code (str | Unset): Required while MFA is on: a 6-digit code from your authenticator app, or a recovery code.
            Example: 123456.
    """

    current_password: str
    code: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        current_password = self.current_password

        code = self.code

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "current_password": current_password,
            }
        )
        if code is not UNSET:
            field_dict["code"] = code

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        current_password = d.pop("current_password")

        code = d.pop("code", UNSET)

        step_up = cls(
            current_password=current_password,
            code=code,
        )

        return step_up
