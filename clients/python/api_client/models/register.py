from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="Register")


@_attrs_define
class Register:
    """
    Attributes:
        email (str):  Example: ada@example.com.
        password (str): 15 to 1024 characters by default, no composition rules; common passwords, repeated patterns, the
            service's name and your email address are refused.
        display_name (str):  Example: Ada Lovelace.
    """

    email: str
    password: str
    display_name: str

    def to_dict(self) -> dict[str, Any]:
        email = self.email

        password = self.password

        display_name = self.display_name

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "email": email,
                "password": password,
                "display_name": display_name,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        email = d.pop("email")

        password = d.pop("password")

        display_name = d.pop("display_name")

        register = cls(
            email=email,
            password=password,
            display_name=display_name,
        )

        return register
