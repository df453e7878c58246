"""The users namespace: one's own profile and password, and user admin."""

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import Response, request, url_for
from flask_jwt_extended import current_user, get_current_user, get_jwt
from flask_restx import Resource
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


def update_user(user: User, schema: ProfileUpdateSchema) -> dict[str, Any]:
    """Apply a validated partial update and commit it."""
    for field, value in load_json(schema).items():
        setattr(user, field, value)
    db.session.commit()
    return dump_user(user)


def create_user(data: dict[str, Any]) -> User:
    password = data.pop("password")
    user = User(**data)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def created(user: User) -> tuple[dict[str, Any], int, dict[str, str]]:
    return dump_user(user), 201, {"Location": url_for("users_user_detail", user_id=user.id)}


def deleted(user: User) -> Response:
    db.session.delete(user)
    db.session.commit()
    return Response(status=204)


@ns.route("/me")
class Me(Resource):
    @ns.response(200, "Your profile", user_model)
    @problems(401)
    def get(self) -> dict[str, Any]:
        """Show your profile."""
        return dump_user(current_user)

    @ns.expect(model(ProfileUpdateSchema))
    @ns.response(200, "Updated profile", user_model)
    @problems(*BODY_ERRORS, 401, 409)
    def patch(self) -> dict[str, Any]:
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
        if not current_user.check_password(data["current_password"]):
            raise ApiError(
                422, "validation_failed", "The request is not valid.", {"current_password": ["Incorrect password."]}
            )
        current_user.set_password(data["new_password"])
        end_sessions(RefreshSession.user_id == current_user.id, RefreshSession.id != uuid.UUID(get_jwt()["sid"]))
        db.session.commit()
        return Response(status=204)


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
    def get(self) -> tuple[dict[str, Any], int, dict[str, str]]:
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
    @ns.response(201, "User created", user_model)
    @problems(*BODY_ERRORS, 401, 403, 409)
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create a user with a role (admin)."""
        return created(create_user(load_json(UserCreateSchema())))


@ns.route("/<uuid:user_id>")
@ns.param("user_id", "The user's id (a UUID)")
class UserDetail(Resource):
    @ns.response(200, "The user", user_model)
    @problems(401, 404)
    def get(self, user_id: uuid.UUID) -> dict[str, Any]:
        """Show a user (admin, or yourself)."""
        return dump_user(visible_user(user_id))

    @ns.expect(model(AdminUserUpdateSchema))
    @ns.response(200, "Updated user", user_model)
    @problems(*BODY_ERRORS, 401, 404, 409)
    def patch(self, user_id: uuid.UUID) -> dict[str, Any]:
        """Change a user (admin); on yourself, only what PATCH /users/me allows."""
        user = visible_user(user_id)
        own = user.id == current_user.id
        return update_user(user, ProfileUpdateSchema(partial=True) if own else AdminUserUpdateSchema(partial=True))

    @ns.response(204, "User deleted")
    @problems(401, 404)
    def delete(self, user_id: uuid.UUID) -> Response:
        """Delete a user (admin, or yourself)."""
        return deleted(visible_user(user_id))
