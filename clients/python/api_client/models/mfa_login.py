from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="MfaLogin")


@_attrs_define
class MfaLogin:
    """
    Attributes:
        mfa_token (str): The mfa_token of the 403 mfa_required that POST /auth/login answered.
        code (str): A 6-digit code from your authenticator app, or a recovery code. Example: 123456.
    """

    mfa_token: str
    code: str

    def to_dict(self) -> dict[str, Any]:
        mfa_token = self.mfa_token

        code = self.code

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "mfa_token": mfa_token,
                "code": code,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        mfa_token = d.pop("mfa_token")

        code = d.pop("code")

        mfa_login = cls(
            mfa_token=mfa_token,
            code=code,
        )

        return mfa_login
