"""The users namespace: one's own profile and password, and user admin."""

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, request, url_for
from flask_jwt_extended import current_user, get_current_user, get_jwt
from flask_restx import Resource
from marshmallow import ValidationError
from sqlalchemy import Select, func, select, tuple_

from app.errors import ApiError
from app.extensions import api, db
from app.models import RefreshSession, User, end_sessions
from app.openapi import BODY_ERRORS, model, problems, query
from app.ratelimit import limit
from app.schemas import (
    AdminUserUpdateSchema,
    PasswordChangeSchema,
    ProfileUpdateSchema,
    UserCreateSchema,
    UserListQuerySchema,
    UserPageSchema,
    UserSchema,
    load_json,
    load_query,
    password_problem,
)

F = TypeVar("F", bound=Callable[..., Any])

ns = api.namespace("users", description="Profiles and user administration")

user_model = model(UserSchema)


def admin_only(func: F) -> F:
    """Refuse (403) a caller whose role, read from the database this request, is not admin."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            raise ApiError(403, "forbidden", "This needs the admin role.")
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def visible_user(user_id: uuid.UUID) -> User:
    """The user, if the caller may see it; otherwise 404, the same as for an unknown id."""
    user = db.session.get(User, user_id)
    if user is None or not (current_user.is_admin or user.id == current_user.id):
        raise ApiError(404, "not_found", "No user with this id.")
    return user


def dump_user(user: User) -> dict[str, Any]:
    result: dict[str, Any] = UserSchema().dump(user)
    return result


Representation = tuple[dict[str, Any], int, dict[str, str]]
ETAG = {"ETag": "The version of this user; send it back in If-Match to update it safely."}
IF_MATCH = "The ETag from your last read. A stale one gets 412; without it the update applies (or 428 if required)."


def represent(user: User, status: int = 200) -> Representation:
    """The user as JSON, with the ETag of this version."""
    return dump_user(user), status, {"ETag": user.etag}


def check_if_match(user: User) -> None:
    """Refuse an update based on an older version (412), or one that names none when required (428)."""
    if "If-Match" not in request.headers:
        if current_app.config["REQUIRE_IF_MATCH"]:
            raise ApiError(428, "precondition_required", "Send If-Match with the ETag from your last read.")
        return
    if not (request.if_match.star_tag or request.if_match.contains(user.etag.strip('"'))):
        raise ApiError(412, "precondition_failed", "The user changed since you read it; fetch it again.")


def update_user(user: User, schema: ProfileUpdateSchema) -> Representation:
    """Apply a validated partial update, if the caller saw the current version, and commit it."""
    data = load_json(schema)
    if {"role", "is_active"} & data.keys() and (not current_user.is_admin or user.id == current_user.id):
        # An admin cannot demote or disable themselves either: that could leave no admin at all.
        raise ApiError(403, "forbidden", "Only an admin can change role or is_active, and not their own.")
    check_if_match(user)
    for field, value in data.items():
        setattr(user, field, value)
    db.session.commit()
    return represent(user)


def create_user(data: dict[str, Any]) -> User:
    password = data.pop("password")
    user = User(**data)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def created(user: User) -> Representation:
    body, status, headers = represent(user, 201)
    return body, status, {**headers, "Location": url_for("users_user_detail", user_id=user.id)}


def no_content() -> Response:
    """An empty 204 (typed as JSON, like every documented answer, not Flask's default text/html)."""
    return Response(status=204, mimetype="application/json")


def deleted(user: User) -> Response:
    db.session.delete(user)
    db.session.commit()
    return no_content()


@ns.route("/me")
class Me(Resource):
    @ns.response(200, "Your profile", user_model, headers=ETAG)
    @problems(401)
    def get(self) -> Representation:
        """Show your profile."""
        return represent(current_user)

    @ns.expect(model(ProfileUpdateSchema))
    @ns.param("If-Match", IF_MATCH, _in="header")
    @ns.response(200, "Updated profile", user_model, headers=ETAG)
    @problems(*BODY_ERRORS, 401, 409, 412, 428)
    def patch(self) -> Representation:
        """Change your email or display name."""
        return update_user(current_user, ProfileUpdateSchema(partial=True))

    @ns.response(204, "Account deleted")
    @problems(401)
    def delete(self) -> Response:
        """Delete your account and end all its sessions."""
        return deleted(get_current_user())


@ns.route("/me/password")
class MyPassword(Resource):
    @ns.expect(model(PasswordChangeSchema))
    @ns.response(204, "Password changed; your other sessions have ended")
    @problems(*BODY_ERRORS, 401)
    @limit("RATELIMIT_PASSWORD_IP")
    def post(self) -> Response:
        """Change your password (needs the current one); ends your other sessions."""
        data = load_json(PasswordChangeSchema())
        problem = password_problem(data["new_password"], current_user.email)
        if problem:
            raise ValidationError(problem, "new_password")
        if not current_user.check_password(data["current_password"]):
            raise ApiError(
                422, "validation_failed", "The request is not valid.", {"current_password": ["Incorrect password."]}
            )
        current_user.set_password(data["new_password"])
        end_sessions(RefreshSession.user_id == current_user.id, RefreshSession.id != uuid.UUID(get_jwt()["sid"]))
        db.session.commit()
        return no_content()


SORT_COLUMNS = {"created_at": User.created_at, "email": User.email}


def encode_cursor(sort: str, user: User) -> str:
    value = getattr(user, sort.lstrip("-"))
    raw = json.dumps([sort, value.isoformat() if isinstance(value, datetime) else value, str(user.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    """The (sort value, id) a page starts after; 422 if the cursor is not one of ours for this sort."""
    try:
        cursor_sort, value, user_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if cursor_sort != sort:
            raise ValueError("cursor from another sort order")
        return (datetime.fromisoformat(value) if sort.lstrip("-") == "created_at" else str(value)), uuid.UUID(user_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as e:
        raise ApiError(422, "validation_failed", "The request is not valid.", {"cursor": ["Invalid cursor."]}) from e


def user_list_query(args: dict[str, Any]) -> Select[User]:
    """Filter and keyset-order the users; the (column, id) order is backed by an index."""
    stmt = select(User)
    if "email" in args:
        stmt = stmt.where(User.email.contains(args["email"].lower(), autoescape=True))
    if "name" in args:
        stmt = stmt.where(func.lower(User.display_name).contains(args["name"].lower(), autoescape=True))
    for field in ("role", "is_active"):
        if field in args:
            stmt = stmt.where(getattr(User, field) == args[field])
    sort = args["sort"]
    column = SORT_COLUMNS[sort.lstrip("-")]
    descending = sort.startswith("-")
    if "cursor" in args:
        key = tuple_(column, User.id)
        after = tuple_(*decode_cursor(args["cursor"], sort))
        stmt = stmt.where(key < after if descending else key > after)
    order = (column.desc(), User.id.desc()) if descending else (column.asc(), User.id.asc())
    return stmt.order_by(*order).limit(args["limit"] + 1)


@ns.route("")
class UserList(Resource):
    @admin_only
    @ns.doc(params=query(UserListQuerySchema))
    @ns.response(200, "A page of users; a Link header points to the next", model(UserPageSchema))
    @problems(401, 403, 422)
    def get(self) -> Representation:
        """List users (admin): filter, sort and page with a cursor."""
        args = load_query(UserListQuerySchema())
        users = list(db.session.scalars(user_list_query(args)))
        page, more = users[: args["limit"]], len(users) > args["limit"]
        next_cursor = encode_cursor(args["sort"], page[-1]) if more else None
        headers = {}
        if next_cursor:
            next_url = url_for("users_user_list", **{**request.args.to_dict(), "cursor": next_cursor}, _external=True)
            headers["Link"] = f'<{next_url}>; rel="next"'
        return UserPageSchema().dump({"items": page, "next_cursor": next_cursor}), 200, headers

    @admin_only
    @ns.expect(model(UserCreateSchema))
    @ns.response(201, "User created", user_model, headers=ETAG)
    @problems(*BODY_ERRORS, 401, 403, 409)
    def post(self) -> Representation:
        """Create a user with a role (admin)."""
        return created(create_user(load_json(UserCreateSchema())))


@ns.route("/<uuid:user_id>")
@ns.param("user_id", "The user's id (a UUID)")
class UserDetail(Resource):
    @ns.response(200, "The user", user_model, headers=ETAG)
    @problems(401, 404)
    def get(self, user_id: uuid.UUID) -> Representation:
        """Show a user (admin, or yourself)."""
        return represent(visible_user(user_id))

    @ns.expect(model(AdminUserUpdateSchema))
    @ns.param("If-Match", IF_MATCH, _in="header")
    @ns.response(200, "Updated user", user_model, headers=ETAG)
    @problems(*BODY_ERRORS, 401, 403, 404, 409, 412, 428)
    def patch(self, user_id: uuid.UUID) -> Representation:
        """Change a user (admin); on yourself, only what PATCH /users/me allows."""
        user = visible_user(user_id)
        return update_user(user, AdminUserUpdateSchema(partial=True))

    @ns.response(204, "User deleted")
    @problems(401, 404)
    def delete(self, user_id: uuid.UUID) -> Response:
        """Delete a user (admin, or yourself)."""
        return deleted(visible_user(user_id))
