from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ProfileUpdatePatch")


@_attrs_define
class ProfileUpdatePatch:
    """
    Attributes:
        email (str | Unset):  Example: ada@example.com.
        display_name (str | Unset):  Example: Ada Lovelace.
        current_password (str | Unset): The caller's own password (an admin's, when changing someone else). Required to
            change `email`, which then waits for the new address to confirm; checked whenever it is sent.
        mfa_code (str | Unset): While the caller's MFA is on, required with current_password: a code from the
            authenticator app, or a recovery code.
    """

    email: str | Unset = UNSET
    display_name: str | Unset = UNSET
    current_password: str | Unset = UNSET
    mfa_code: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        email = self.email

        display_name = self.display_name

        current_password = self.current_password

        mfa_code = self.mfa_code

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if email is not UNSET:
            field_dict["email"] = email
        if display_name is not UNSET:
            field_dict["display_name"] = display_name
        if current_password is not UNSET:
            field_dict["current_password"] = current_password
        if mfa_code is not UNSET:
            field_dict["mfa_code"] = mfa_code

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        email = d.pop("email", UNSET)

        display_name = d.pop("display_name", UNSET)

        current_password = d.pop("current_password", UNSET)

        mfa_code = d.pop("mfa_code", UNSET)

        profile_update_patch = cls(
            email=email,
            display_name=display_name,
            current_password=current_password,
            mfa_code=mfa_code,
        )

        return profile_update_patch
