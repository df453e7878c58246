from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.role import Role, check_role
from ..types import UNSET, Unset

T = TypeVar("T", bound="UserCreate")


@_attrs_define
class UserCreate:
    """
    Attributes:
        email (str):  Example: ada@example.com.
        password (str): 15 to 1024 characters by default, no composition rules; common passwords, repeated patterns, the
            service's name and your email address are refused.
        display_name (str):  Example: Ada Lovelace.
        role (Role | Unset):
        is_active (bool | Unset):  Default: True.
    """

    email: str
    password: str
    display_name: str
    role: Role | Unset = UNSET
    is_active: bool | Unset = True

    def to_dict(self) -> dict[str, Any]:
        email = self.email

        password = self.password

        display_name = self.display_name

        role: str | Unset = UNSET
        if not isinstance(self.role, Unset):
            role = self.role

        is_active = self.is_active

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "email": email,
                "password": password,
                "display_name": display_name,
            }
        )
        if role is not UNSET:
            field_dict["role"] = role
        if is_active is not UNSET:
            field_dict["is_active"] = is_active

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        email = d.pop("email")

        password = d.pop("password")

        display_name = d.pop("display_name")

        _role = d.pop("role", UNSET)
        role: Role | Unset
        if isinstance(_role, Unset):
            role = UNSET
        else:
            role = check_role(_role)

        is_active = d.pop("is_active", UNSET)

        user_create = cls(
            email=email,
            password=password,
            display_name=display_name,
            role=role,
            is_active=is_active,
        )

        return user_create
