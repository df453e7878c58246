"""The users namespace: one's own profile and password, and user admin."""

import uuid
from collections.abc import Callable
from email.message import EmailMessage
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, request, url_for
from flask_restx import Resource
from marshmallow import ValidationError
from sqlalchemy import Select, select

from app.audit import record
from app.errors import ApiError
from app.extensions import api, db
from app.identity import Caller, authenticate, current_user, me, token_claims
from app.mail import send
from app.models import RefreshSession, User, end_sessions
from app.onetime import spend_tokens, verification_mail
from app.openapi import BODY_ERRORS, model, problems, query
from app.pagination import keyset_page
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


Representation = tuple[dict[str, Any], int, dict[str, str]]
ETAG = {"ETag": "The version of this user; send it back in If-Match to update it safely."}
IF_MATCH = "The ETag from your last read. A stale one gets 412; without it the update applies (or 428 if required)."


# One instance each: building a Schema costs more than dumping one user with it, and building the
# page schema (with its nested one) half as much again as dumping a page of 20.
USER_SCHEMA = UserSchema()
USER_PAGE_SCHEMA = UserPageSchema()
USER_LIST_QUERY = UserListQuerySchema()


def represent(user: User | Caller, status: int = 200) -> Representation:
    """The user (an entity, or the caller's row) as JSON, with a strong ETag of this version."""
    return USER_SCHEMA.dump(user), status, {"ETag": f'"{user.version}"'}


def check_if_match(user: User) -> None:
    """Refuse an update based on an older version (412), or one that names none when required (428)."""
    if "If-Match" not in request.headers:
        if current_app.config["REQUIRE_IF_MATCH"]:
            raise ApiError(428, "precondition_required", "Send If-Match with the ETag from your last read.")
        return
    if not (request.if_match.star_tag or request.if_match.contains(str(user.version))):
        raise ApiError(412, "precondition_failed", "The user changed since you read it; fetch it again.")


def update_user(user: User, schema: ProfileUpdateSchema) -> Representation:
    """Apply a validated partial update, if the caller saw the current version, and commit it."""
    data = load_json(schema)
    if {"role", "is_active"} & data.keys() and (not current_user.is_admin or user.id == current_user.id):
        # An admin cannot demote or disable themselves either: that could leave no admin at all.
        raise ApiError(403, "forbidden", "Only an admin can change role or is_active, and not their own.")
    check_if_match(user)
    before = {field: getattr(user, field) for field in data}
    for field, value in data.items():
        setattr(user, field, value)
    mail = record_changes(user, before)
    db.session.commit()
    if mail:
        send(mail)
    return represent(user)


AUDITED_CHANGES = {"email": "user.email_changed", "role": "user.role_changed", "is_active": "user.activation_changed"}


def record_changes(user: User, before: dict[str, Any]) -> EmailMessage | None:
    """Audit changed email, role and activation; a new email gets a verification mail (to send after commit)."""
    for field, action in AUDITED_CHANGES.items():
        if field in before and before[field] != getattr(user, field):
            record(action, current_user.id, user.id, **{"from": before[field], "to": getattr(user, field)})
    return verification_mail(user) if before.get("email", user.email) != user.email else None


def create_user(data: dict[str, Any], action: str = "user.created", actor_id: uuid.UUID | None = None) -> User:
    """Insert, audit and commit a user, then mail a verification token unless the email is verified."""
    password = data.pop("password")
    user = User(**data)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()  # assigns the id the audit event and the token refer to
    record(action, actor_id, user.id)
    mail = None if user.email_verified_at else verification_mail(user)
    db.session.commit()
    if mail:
        send(mail)
    return user


def created(user: User) -> Representation:
    body, status, headers = represent(user, 201)
    return body, status, {**headers, "Location": url_for("users_user_detail", user_id=user.id)}


def no_content() -> Response:
    """An empty 204 (typed as JSON, like every documented answer, not Flask's default text/html)."""
    return Response(status=204, mimetype="application/json")


def deleted(user: User) -> Response:
    db.session.delete(user)
    record("user.deleted", current_user.id, user.id, email=user.email)
    db.session.commit()
    return no_content()


@ns.route("/me")
class Me(Resource):
    @ns.response(200, "Your profile", user_model, headers=ETAG)
    @problems(401)
    def get(self) -> Representation:
        """Show your profile."""
        return represent(authenticate())  # the caller's row, already loaded; current_user is a proxy to it

    @ns.expect(model(ProfileUpdateSchema))
    @ns.param("If-Match", IF_MATCH, _in="header")
    @ns.response(200, "Updated profile", user_model, headers=ETAG)
    @problems(*BODY_ERRORS, 401, 409, 412, 428)
    def patch(self) -> Representation:
        """Change your email or display name."""
        return update_user(me(), ProfileUpdateSchema(partial=True))

    @ns.response(204, "Account deleted")
    @problems(401)
    def delete(self) -> Response:
        """Delete your account and end all its sessions."""
        return deleted(me())


@ns.route("/me/password")
class MyPassword(Resource):
    @ns.expect(model(PasswordChangeSchema))
    @ns.response(204, "Password changed; your other sessions have ended")
    @problems(*BODY_ERRORS, 401)
    @limit("RATELIMIT_PASSWORD_IP")
    def post(self) -> Response:
        """Change your password (needs the current one); ends your other sessions."""
        data = load_json(PasswordChangeSchema())
        user = me()
        problem = password_problem(data["new_password"], user.email)
        if problem:
            raise ValidationError(problem, "new_password")
        if not user.check_password(data["current_password"]):
            raise ApiError(
                422, "validation_failed", "The request is not valid.", {"current_password": ["Incorrect password."]}
            )
        user.set_password(data["new_password"])
        end_sessions(RefreshSession.user_id == user.id, RefreshSession.id != uuid.UUID(token_claims()["sid"]))
        spend_tokens(user.id, "password_reset")  # a reset mailed before the change must not undo it
        record("password.changed", user.id, user.id)
        db.session.commit()
        return no_content()


SORT_COLUMNS = {"created_at": User.created_at, "email": User.email}


def user_list_query(args: dict[str, Any]) -> Select[User]:
    """The users matching the list filters (LIKE wildcards in them match literally)."""
    stmt = select(User)
    if "email" in args:
        stmt = stmt.where(User.email.contains(args["email"].lower(), autoescape=True))
    if "name" in args:
        # ILIKE on the bare column (lower() LIKE on SQLite), which the trigram index on display_name serves.
        stmt = stmt.where(User.display_name.icontains(args["name"], autoescape=True))
    for field in ("role", "is_active"):
        if field in args:
            stmt = stmt.where(getattr(User, field) == args[field])
    return stmt


@ns.route("")
class UserList(Resource):
    @admin_only
    @ns.doc(params=query(UserListQuerySchema))
    @ns.response(200, "A page of users; a Link header points to the next", model(UserPageSchema))
    @problems(401, 403, 422)
    def get(self) -> Representation:
        """List users (admin): filter, sort and page with a cursor."""
        args = load_query(USER_LIST_QUERY)
        column = SORT_COLUMNS[args["sort"].lstrip("-")]
        page, headers = keyset_page(user_list_query(args), column, args, "users_user_list")
        return USER_PAGE_SCHEMA.dump(page), 200, headers

    @admin_only
    @ns.expect(model(UserCreateSchema))
    @ns.response(201, "User created", user_model, headers=ETAG)
    @problems(*BODY_ERRORS, 401, 403, 409)
    def post(self) -> Representation:
        """Create a user with a role (admin)."""
        return created(create_user(load_json(UserCreateSchema()), actor_id=current_user.id))


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
