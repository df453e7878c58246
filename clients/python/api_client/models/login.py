from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="Login")


@_attrs_define
class Login:
    """
    Attributes:
        email (str):  Example: ada@example.com.
        password (str):
        device_token (str | Unset): The device_token an earlier login to this account gave this client: while strangers'
            failed guesses hold the account at its limit, a client showing one still logs in.
    """

    email: str
    password: str
    device_token: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        email = self.email

        password = self.password

        device_token = self.device_token

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "email": email,
                "password": password,
            }
        )
        if device_token is not UNSET:
            field_dict["device_token"] = device_token

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        email = d.pop("email")

        password = d.pop("password")

        device_token = d.pop("device_token", UNSET)

        login = cls(
            email=email,
            password=password,
            device_token=device_token,
        )

        return login
