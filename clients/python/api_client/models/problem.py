from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.problem_errors import ProblemErrors


T = TypeVar("T", bound="Problem")


@_attrs_define
class Problem:
    """
    Attributes:
        type_ (str):  Example: about:blank.
        title (str):  Example: Unprocessable Content.
        status (int):  Example: 422.
        detail (str):
        code (str): Stable machine-readable error code. Example: validation_failed.
        request_id (str):
        errors (ProblemErrors | Unset): Field name -> messages (422 and 409 only).
        mfa_token (str | Unset): Only with code mfa_required (POST /auth/login): the challenge to send with a code to
            POST /auth/login/mfa; it works once, for MFA_CHALLENGE_MINUTES.
    """

    type_: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    errors: ProblemErrors | Unset = UNSET
    mfa_token: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        type_ = self.type_

        title = self.title

        status = self.status

        detail = self.detail

        code = self.code

        request_id = self.request_id

        errors: dict[str, Any] | Unset = UNSET
        if not isinstance(self.errors, Unset):
            errors = self.errors.to_dict()

        mfa_token = self.mfa_token

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "type": type_,
                "title": title,
                "status": status,
                "detail": detail,
                "code": code,
                "request_id": request_id,
            }
        )
        if errors is not UNSET:
            field_dict["errors"] = errors
        if mfa_token is not UNSET:
            field_dict["mfa_token"] = mfa_token

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.problem_errors import ProblemErrors  # noqa: PLC0415

        d = dict(src_dict)
        type_ = d.pop("type")

        title = d.pop("title")

        status = d.pop("status")

        detail = d.pop("detail")

        code = d.pop("code")

        request_id = d.pop("request_id")

        _errors = d.pop("errors", UNSET)
        errors: ProblemErrors | Unset
        if isinstance(_errors, Unset):
            errors = UNSET
        else:
            errors = ProblemErrors.from_dict(_errors)

        mfa_token = d.pop("mfa_token", UNSET)

        problem = cls(
            type_=type_,
            title=title,
            status=status,
            detail=detail,
            code=code,
            request_id=request_id,
            errors=errors,
            mfa_token=mfa_token,
        )

        return problem
