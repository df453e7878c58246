from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define

from ..models.audit_action import AuditAction, check_audit_action

if TYPE_CHECKING:
    from ..models.audit_event_details_type_0 import AuditEventDetailsType0


T = TypeVar("T", bound="AuditEvent")


@_attrs_define
class AuditEvent:
    """
    Attributes:
        id (UUID):
        created_at (datetime.datetime):
        action (AuditAction):
        actor_id (None | UUID): Who did it; null when anonymous.
        target_id (None | UUID): The user it was done to.
        ip (None | str):
        request_id (None | str):
        details (AuditEventDetailsType0 | None):
    """

    id: UUID
    created_at: datetime.datetime
    action: AuditAction
    actor_id: None | UUID
    target_id: None | UUID
    ip: None | str
    request_id: None | str
    details: AuditEventDetailsType0 | None

    def to_dict(self) -> dict[str, Any]:
        from ..models.audit_event_details_type_0 import AuditEventDetailsType0  # noqa: PLC0415

        id = str(self.id)

        created_at = self.created_at.isoformat()

        action: str = self.action

        actor_id: None | str
        if isinstance(self.actor_id, UUID):
            actor_id = str(self.actor_id)
        else:
            actor_id = self.actor_id

        target_id: None | str
        if isinstance(self.target_id, UUID):
            target_id = str(self.target_id)
        else:
            target_id = self.target_id

        ip: None | str
        ip = self.ip

        request_id: None | str
        request_id = self.request_id

        details: dict[str, Any] | None
        if isinstance(self.details, AuditEventDetailsType0):
            details = self.details.to_dict()
        else:
            details = self.details

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "created_at": created_at,
                "action": action,
                "actor_id": actor_id,
                "target_id": target_id,
                "ip": ip,
                "request_id": request_id,
                "details": details,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.audit_event_details_type_0 import AuditEventDetailsType0  # noqa: PLC0415

        d = dict(src_dict)
        id = UUID(d.pop("id"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        action = check_audit_action(d.pop("action"))

        def _parse_actor_id(data: object) -> None | UUID:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                actor_id_type_0 = UUID(data)

                return actor_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        actor_id = _parse_actor_id(d.pop("actor_id"))

        def _parse_target_id(data: object) -> None | UUID:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                target_id_type_0 = UUID(data)

                return target_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UUID, data)

        target_id = _parse_target_id(d.pop("target_id"))

        def _parse_ip(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        ip = _parse_ip(d.pop("ip"))

        def _parse_request_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        request_id = _parse_request_id(d.pop("request_id"))

        def _parse_details(data: object) -> AuditEventDetailsType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                details_type_0 = AuditEventDetailsType0.from_dict(data)

                return details_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AuditEventDetailsType0 | None, data)

        details = _parse_details(d.pop("details"))

        audit_event = cls(
            id=id,
            created_at=created_at,
            action=action,
            actor_id=actor_id,
            target_id=target_id,
            ip=ip,
            request_id=request_id,
            details=details,
        )

        return audit_event
