"""The users namespace: one's own profile and password, and user admin."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Select, inspect, select
from sqlalchemy.exc import InvalidRequestError

from app.accounts.factors import limit_code_guesses, prove_code
from app.accounts.models import User, email_search_term, end_every_session, void_mailed_tokens
from app.accounts.passwords import password_problem
from app.accounts.schemas import (
    AdminUserUpdateSchema,
    PasswordChangeSchema,
    ProfileUpdateSchema,
    UserCreateSchema,
    UserListQuerySchema,
    UserPageSchema,
    UserSchema,
)
from app.accounts.service import (
    create_user,
    limit_password_guesses,
    prove_password,
    request_email_change,
    set_new_password,
)
from app.audit.trail import record
from app.core.extensions import db
from app.core.mail import send
from app.core.ratelimit import limit
from app.toolkit import (
    ApiError,
    Namespace,
    Resource,
    admin_only,
    body,
    check_if_match,
    created,
    current_user,
    errors,
    keyset_page,
    me,
    operation,
    owned_or_404,
    query,
    response,
)
from app.toolkit.identity import Caller, authenticate, invalid_token, token_claims

ns = Namespace("users", description="Profiles and user administration")

AUDITED_CHANGES = {"role": "user.role_changed", "is_active": "user.activation_changed"}
SORT_COLUMNS = {"created_at": User.created_at, "email": User.email}


def visible_user(user_id: uuid.UUID) -> User:
    """The user, if the caller is an admin or the user; otherwise 404, as for an unknown id."""
    return owned_or_404(User, user_id, owner="id")


def reread(user: User, lock: bool = False) -> User:
    """The user read afresh; deleted meanwhile: 404 (401 when it was the caller).

    With lock, its row stays locked until commit: a racing change or delete waits its turn instead of
    failing on the version this request read. An admin's row is locked after every active admin's, in
    the order an_admin_remains locks them, so two admins changing each other cannot deadlock.
    """
    (user_id,) = inspect(user).identity or (None,)  # user.id itself may be expired, the row gone
    try:
        if lock and user.is_admin:
            db.session.execute(ACTIVE_ADMINS.order_by(User.id).with_for_update(key_share=True))
        # key_share: FOR NO KEY UPDATE, which a DELETE waits for, and a login's FOR KEY SHARE does not.
        db.session.refresh(user, with_for_update={"key_share": True} if lock else None)
    except InvalidRequestError:
        if user_id == current_user.id:
            raise invalid_token("The token is no longer valid.") from None
        raise ApiError(404, "not_found", "No user with this id.") from None
    return user


def update_user(user: User, data: dict[str, Any]) -> User:
    """Apply a validated partial update, if the caller saw the current version, and commit it."""
    reread(user, lock=True)
    if {"role", "is_active"} & data.keys() and (not current_user.is_admin or user.id == current_user.id):
        # An admin cannot demote or disable themselves either: that could leave no admin at all.
        raise ApiError(403, "forbidden", "Only an admin can change role or is_active, and not their own.")
    check_if_match(user)
    password = data.pop("current_password", None)
    code = data.pop("mfa_code", None)
    if password is not None:
        prove_password(me(), password)  # the caller's own, whoever's account it is
        if data.get("email", user.email) != user.email:
            prove_code(me(), code, "mfa_code")  # and their second factor, while it is on
    mails = []
    if "email" in data:
        mails = request_email_change(user, data.pop("email"), password is not None, current_user.id)
    with an_admin_remains(user, data):
        before = {field: getattr(user, field) for field in data}
        for field, value in data.items():
            setattr(user, field, value)
        if before.get("is_active") and not user.is_active:
            # Disabled refuses every token at once; ending them too keeps them refused once re-enabled.
            end_every_session(user)
            void_mailed_tokens(user)
        record_changes(user, before)
    for mail in mails:
        send(mail)
    db.session.commit()
    return reread(user)  # loaded now: a delete committed before the answer is made cannot fail it


def record_changes(user: User, before: dict[str, Any]) -> None:
    """Audit changed role and activation."""
    for field, action in AUDITED_CHANGES.items():
        if field in before and before[field] != getattr(user, field):
            record(action, current_user.id, user.id, **{"from": before[field], "to": getattr(user, field)})


def delete_user(user: User) -> None:
    reread(user, lock=True)
    with an_admin_remains(user, None):
        db.session.delete(user)
        record("user.deleted", current_user.id, user.id, email=user.email)
    db.session.commit()


def removes_an_admin(user: User, change: dict[str, Any] | None) -> bool:
    """Whether the change (None: deleting) takes an active admin away."""
    if not (user.is_admin and user.is_active):
        return False
    return change is None or change.get("role", "admin") != "admin" or change.get("is_active") is False


# The active admins; their rows are locked before one of them is taken away.
ACTIVE_ADMINS = select(User.id).where(User.role == "admin", User.is_active)


@contextmanager
def an_admin_remains(user: User, change: dict[str, Any] | None) -> Iterator[None]:
    """Around a change (None: deleting) that may take an active admin away: 409 unless one is left after it.

    Two admins removing each other at once would each see the other still there, so the active admins'
    rows are locked first; the second waits for the first to commit and then counts what is left.
    (SQLite, which ignores FOR UPDATE, lets one writer in at a time, and the count is made under that.)
    """
    if not removes_an_admin(user, change):
        yield
        return
    db.session.execute(ACTIVE_ADMINS.order_by(User.id).with_for_update(key_share=True))
    yield
    db.session.flush()
    if db.session.scalar(ACTIVE_ADMINS.limit(1)) is None:
        raise ApiError(409, "last_admin", "At least one active admin must remain; make another admin first.")


def user_list_query(args: dict[str, Any]) -> Select[User]:
    """The users matching the list filters (LIKE wildcards in them match literally)."""
    stmt = select(User)
    if "email" in args:
        stmt = stmt.where(User.email.contains(email_search_term(args["email"]), autoescape=True))
    if "name" in args:
        # ILIKE on the bare column (lower() LIKE on SQLite), which the trigram index on display_name serves.
        stmt = stmt.where(User.display_name.icontains(args["name"], autoescape=True))
    for field in ("role", "is_active"):
        if field in args:
            stmt = stmt.where(getattr(User, field) == args[field])
    return stmt


@ns.route("/me")
class Me(Resource):
    @operation("getMe")
    @response(UserSchema, description="Your profile", etag=True)
    def get(self) -> Caller:
        """Show your profile."""
        return authenticate()  # the caller's row, already loaded; current_user is a proxy to it

    @operation("updateMe")
    @body(ProfileUpdateSchema(partial=True))
    @response(UserSchema, description="Updated profile", etag=True)
    @errors(409, 412, 428)
    @limit_password_guesses
    @limit_code_guesses
    def patch(self, data: dict[str, Any]) -> User:
        """Change your display name, or your email (with your password; the new address must confirm)."""
        return update_user(me(), data)

    @operation("deleteMe")
    @response(None, 204, "Account deleted")
    @errors(409)
    def delete(self) -> None:
        """Delete your account and end all its sessions."""
        delete_user(me())


@ns.route("/me/password")
class MyPassword(Resource):
    @operation("changePassword")
    @body(PasswordChangeSchema)
    @response(None, 204, "Password changed; your other sessions have ended")
    @limit("RATELIMIT_PASSWORD_IP")
    @limit_password_guesses
    @limit_code_guesses
    def post(self, data: dict[str, Any]) -> None:
        """Change your password (needs the current one, and a code while MFA is on); ends your other sessions."""
        user = me()
        if problem := password_problem(data["new_password"], user.email):
            raise ValidationError(problem, "new_password")
        prove_password(user, data["current_password"])
        prove_code(user, data.get("mfa_code"), "mfa_code")
        notice = set_new_password(user, data["new_password"], "changed", keep=uuid.UUID(token_claims()["sid"]))
        record("password.changed", user.id, user.id)
        send(notice)
        db.session.commit()


@ns.route("")
class UserList(Resource):
    @operation("listUsers")
    @admin_only
    @query(UserListQuerySchema)
    @response(UserPageSchema, description="A page of users; a Link header points to the next")
    def get(self, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """List users (admin): filter, sort and page with a cursor."""
        column = SORT_COLUMNS[args["sort"]]
        return keyset_page(user_list_query(args), column, args, descending=args["order"] == "desc")

    @operation("createUser")
    @admin_only
    @body(UserCreateSchema)
    @response(UserSchema, 201, "User created", etag=True)
    @errors(409)
    def post(self, data: dict[str, Any]) -> tuple[User, dict[str, str]]:
        """Create a user with a role (admin)."""
        user = create_user(data, actor_id=current_user.id)
        return created(user, UserDetail, user_id=user.id)


@ns.route("/<uuid:user_id>")
@ns.param("user_id", "The user's id (a UUID)")
class UserDetail(Resource):
    @operation("getUser")
    @response(UserSchema, description="The user", etag=True)
    @errors(404)
    def get(self, user_id: uuid.UUID) -> User:
        """Show a user (admin, or yourself)."""
        return visible_user(user_id)

    @operation("updateUser")
    @body(AdminUserUpdateSchema(partial=True))
    @response(UserSchema, description="Updated user", etag=True)
    @errors(403, 404, 409, 412, 428)
    @limit_password_guesses
    @limit_code_guesses
    def patch(self, data: dict[str, Any], user_id: uuid.UUID) -> User:
        """Change a user (admin); on yourself, only what PATCH /users/me allows."""
        return update_user(visible_user(user_id), data)

    @operation("deleteUser")
    @response(None, 204, "User deleted")
    @errors(404, 409)
    def delete(self, user_id: uuid.UUID) -> None:
        """Delete a user (admin, or yourself)."""
        delete_user(visible_user(user_id))
