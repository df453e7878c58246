from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="PasswordChange")


@_attrs_define
class PasswordChange:
    """
    Attributes:
        current_password (str):
        new_password (str): 15 to 1024 characters by default, no composition rules; common passwords, repeated patterns,
            the service's name and your email address are refused.
        mfa_code (str | Unset): While the caller's MFA is on, required with current_password: a code from the
            authenticator app, or a recovery code.
    """

    current_password: str
    new_password: str
    mfa_code: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        current_password = self.current_password

        new_password = self.new_password

        mfa_code = self.mfa_code

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "current_password": current_password,
                "new_password": new_password,
            }
        )
        if mfa_code is not UNSET:
            field_dict["mfa_code"] = mfa_code

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        current_password = d.pop("current_password")

        new_password = d.pop("new_password")

        mfa_code = d.pop("mfa_code", UNSET)

        password_change = cls(
            current_password=current_password,
            new_password=new_password,
            mfa_code=mfa_code,
        )

        return password_change
