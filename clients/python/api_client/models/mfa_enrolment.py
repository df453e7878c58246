from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="MfaEnrolment")


@_attrs_define
class MfaEnrolment:
    """
    Attributes:
        secret (str): The TOTP secret (base32), for apps that cannot read the URI.
        provisioning_uri (str): An otpauth:// URI to show as a QR code; the issuer is APP_NAME. Example:
            otpauth://totp/Flask%20API%20starter:ada%40example.com?secret=JBSWY3DPEHPK3PXP.
    """

    secret: str
    provisioning_uri: str

    def to_dict(self) -> dict[str, Any]:
        secret = self.secret

        provisioning_uri = self.provisioning_uri

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "secret": secret,
                "provisioning_uri": provisioning_uri,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        secret = d.pop("secret")

        provisioning_uri = d.pop("provisioning_uri")

        mfa_enrolment = cls(
            secret=secret,
            provisioning_uri=provisioning_uri,
        )

        return mfa_enrolment
