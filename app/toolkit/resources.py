"""What a resource answers with: created and empty answers, safe updates, and what a caller may see."""

import uuid
from typing import Any, TypeVar

from flask import Response, current_app, request, url_for
from flask_restx import Resource

from app.core.errors import ApiError
from app.core.extensions import db
from app.toolkit.identity import current_user

M = TypeVar("M")


def created(obj: Any, resource: type[Resource] | str, **values: Any) -> tuple[Any, dict[str, str]]:
    """The new object and its Location: the URL of `resource` (its detail route, or that route's
    endpoint name when it lives in another namespace) with these values."""
    endpoint = resource if isinstance(resource, str) else resource.endpoint  # type: ignore[attr-defined]
    return obj, {"Location": url_for(endpoint, **values)}


def no_content() -> Response:
    """An empty 204 (typed as JSON, like every documented answer, not Flask's default text/html)."""
    return Response(status=204, mimetype="application/json")


def owned_or_404(model: type[M], object_id: uuid.UUID, owner: str = "owner_id") -> M:
    """The object if the caller owns it (its `owner` column is the caller's id) or is an admin;
    otherwise 404, the same as for an unknown id, so ids of others' objects reveal nothing."""
    obj = db.session.get(model, object_id)
    if obj is None or not (current_user.is_admin or getattr(obj, owner) == current_user.id):
        raise ApiError(404, "not_found", f"No {model.__name__.lower()} with this id.")
    return obj


def check_if_match(obj: Any) -> None:
    """Refuse an update based on an older version (412), or one that names none when required (428)."""
    if "If-Match" not in request.headers:
        if current_app.config["REQUIRE_IF_MATCH"]:
            raise ApiError(428, "precondition_required", "Send If-Match with the ETag from your last read.")
        return
    if not (request.if_match.star_tag or request.if_match.contains(str(obj.version))):
        raise ApiError(412, "precondition_failed", "It changed since you read it; fetch it again.")
