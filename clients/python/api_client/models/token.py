from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.token_type import TokenType, check_token_type
from ..types import UNSET, Unset

T = TypeVar("T", bound="Token")


@_attrs_define
class Token:
    """
    Attributes:
        token_type (TokenType):
        expires_in (int): Seconds until the access token expires.
        access_token (str | Unset): Absent in cookie mode (AUTH_COOKIES).
        refresh_token (str | Unset): Absent in cookie mode (AUTH_COOKIES).
    """

    token_type: TokenType
    expires_in: int
    access_token: str | Unset = UNSET
    refresh_token: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        token_type: str = self.token_type

        expires_in = self.expires_in

        access_token = self.access_token

        refresh_token = self.refresh_token

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "token_type": token_type,
                "expires_in": expires_in,
            }
        )
        if access_token is not UNSET:
            field_dict["access_token"] = access_token
        if refresh_token is not UNSET:
            field_dict["refresh_token"] = refresh_token

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        token_type = check_token_type(d.pop("token_type"))

        expires_in = d.pop("expires_in")

        access_token = d.pop("access_token", UNSET)

        refresh_token = d.pop("refresh_token", UNSET)

        token = cls(
            token_type=token_type,
            expires_in=expires_in,
            access_token=access_token,
            refresh_token=refresh_token,
        )

        return token
