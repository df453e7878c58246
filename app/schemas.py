"""Marshmallow schemas: the one definition of every payload, for validation and for Swagger."""

import re
from functools import cache
from pathlib import Path
from typing import Any

from flask import current_app, request
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from werkzeug.exceptions import BadRequest

from app.models import AUDIT_ACTIONS, normalise_email

PASSWORD_MAX_LENGTH = 1024  # bounds the hashing cost of a single request
SORTS = ("created_at", "-created_at", "email", "-email")


class Text(fields.String):
    """A string that refuses NUL bytes (Postgres cannot store them)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("Must not contain NUL characters.")
        return text


@cache
def common_passwords() -> frozenset[str]:
    lines = (Path(__file__).parent / "data" / "common-passwords.txt").read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _letters(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why a new password is refused, or None (NIST SP 800-63B: length and a blocklist, no composition rules)."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if not minimum <= len(password) <= PASSWORD_MAX_LENGTH:
        return f"Length must be between {minimum} and {PASSWORD_MAX_LENGTH}."
    if _letters(password) in common_passwords() or password.lower() in common_passwords():
        return "This password is too common; choose another (a few unrelated words work well)."
    if re.fullmatch(r"(.+?)\1+", password, re.DOTALL) or re.fullmatch(r"(.+?)\1+", _letters(password)):
        return "This password is one pattern repeated; choose another."
    if _letters(current_app.config["APP_NAME"]) in _letters(password):
        return "The password must not contain the name of this service."
    local_part = _letters(email.partition("@")[0]) if email else ""
    if len(local_part) >= 3 and local_part in _letters(password):
        return "The password must not contain your email address."
    return None


class Password(Text):
    """A new password: checked against the rules of password_problem()."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        password = super()._deserialize(value, attr, data, **kwargs)
        problem = password_problem(password)
        if problem:
            raise ValidationError(problem)
        return password


class Email(fields.Email):
    """An email address, trimmed and lower-cased before it is validated."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return normalise_email(super()._deserialize(value, attr, data, **kwargs))


def _email(**kwargs: Any) -> Email:
    return Email(validate=validate.Length(max=254), metadata={"example": "ada@example.com"}, **kwargs)


def _name(**kwargs: Any) -> Text:
    return Text(validate=validate.Length(min=1, max=100), metadata={"example": "Ada Lovelace"}, **kwargs)


def _new_password(**kwargs: Any) -> Password:
    return Password(
        load_only=True,
        validate=validate.Length(max=PASSWORD_MAX_LENGTH),
        metadata={
            "description": "15 to 1024 characters by default, no composition rules; common passwords, "
            "repeated patterns, the service's name and your email address are refused."
        },
        **kwargs,
    )


class UserSchema(Schema):
    id = fields.UUID(dump_only=True)
    email = fields.Email(dump_only=True)
    display_name = fields.String(dump_only=True)
    role = fields.String(dump_only=True, metadata={"enum": ["user", "admin"]})
    is_active = fields.Boolean(dump_only=True)
    email_verified_at = fields.DateTime(
        dump_only=True, allow_none=True, metadata={"description": "When the current email was verified; null: not yet."}
    )
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class RegisterSchema(Schema):
    email = _email(required=True)
    password = _new_password(required=True)
    display_name = _name(required=True)

    @validates_schema
    def _password_unlike_email(self, data: dict[str, Any], **kwargs: Any) -> None:
        problem = password_problem(data["password"], data["email"])
        if problem:
            raise ValidationError(problem, "password")


class UserCreateSchema(RegisterSchema):
    role = fields.String(load_default="user", validate=validate.OneOf(["user", "admin"]))
    is_active = fields.Boolean(load_default=True)


class LoginSchema(Schema):
    email = _email(required=True)
    password = Text(required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX_LENGTH))


class TokenSchema(Schema):
    access_token = fields.String(metadata={"description": "Absent in cookie mode (AUTH_COOKIES)."})
    refresh_token = fields.String(metadata={"description": "Absent in cookie mode (AUTH_COOKIES)."})
    token_type = fields.String(required=True, metadata={"enum": ["Bearer", "cookie"]})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds until the access token expires."})


class ProfileUpdateSchema(Schema):
    """What a user may change about themselves; role and is_active are not here on purpose."""

    email = _email()
    display_name = _name()


class AdminUserUpdateSchema(ProfileUpdateSchema):
    role = fields.String(validate=validate.OneOf(["user", "admin"]))
    is_active = fields.Boolean()


class PasswordChangeSchema(Schema):
    current_password = Text(required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX_LENGTH))
    new_password = _new_password(required=True)


class UserListQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = Text(validate=validate.Length(max=512), metadata={"description": "next_cursor of the previous page."})
    email = Text(validate=validate.Length(max=254), metadata={"description": "Substring of the email."})
    name = Text(validate=validate.Length(max=100), metadata={"description": "Substring of the display name."})
    role = fields.String(validate=validate.OneOf(["user", "admin"]))
    is_active = fields.Boolean()
    sort = fields.String(load_default="created_at", validate=validate.OneOf(SORTS))


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserSchema), required=True)
    next_cursor = fields.String(
        allow_none=True, required=True, metadata={"description": "Pass as cursor for the next page; null on the last."}
    )


def _mailed_token(**kwargs: Any) -> Text:
    return Text(
        validate=validate.Length(min=1, max=128), metadata={"description": "The token from the mail."}, **kwargs
    )


class PasswordResetRequestSchema(Schema):
    email = _email(required=True)


class PasswordResetConfirmSchema(Schema):
    token = _mailed_token(required=True)
    new_password = _new_password(required=True)


class VerifyEmailSchema(Schema):
    token = _mailed_token(required=True)


class AcceptedSchema(Schema):
    detail = fields.String(required=True, metadata={"example": "A mail is on its way."})


class SessionSchema(Schema):
    id = fields.UUID(required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True, metadata={"description": "When a refresh token was last used."})
    expires_at = fields.DateTime(required=True)
    user_agent = fields.String(required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True)
    current = fields.Boolean(required=True, metadata={"description": "Whether the calling token belongs to it."})


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionSchema), required=True)


class AuditEventSchema(Schema):
    id = fields.UUID(required=True)
    created_at = fields.DateTime(required=True)
    action = fields.String(required=True, metadata={"enum": list(AUDIT_ACTIONS)})
    actor_id = fields.UUID(required=True, allow_none=True, metadata={"description": "Who did it; null when anonymous."})
    target_id = fields.UUID(required=True, allow_none=True, metadata={"description": "The user it was done to."})
    ip = fields.String(required=True, allow_none=True)
    request_id = fields.String(required=True, allow_none=True)
    details = fields.Dict(keys=fields.String(), required=True, allow_none=True)


class AuditEventListQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = Text(validate=validate.Length(max=512), metadata={"description": "next_cursor of the previous page."})
    action = fields.String(validate=validate.OneOf(AUDIT_ACTIONS))
    actor_id = fields.UUID()
    target_id = fields.UUID()


class AuditEventPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema), required=True)
    next_cursor = fields.String(
        allow_none=True, required=True, metadata={"description": "Pass as cursor for the next page; null on the last."}
    )


class ProblemSchema(Schema):
    type = fields.String(metadata={"example": "about:blank"})
    title = fields.String(metadata={"example": "Unprocessable Content"})
    status = fields.Integer(metadata={"example": 422})
    detail = fields.String()
    code = fields.String(
        metadata={"description": "Stable machine-readable error code.", "example": "validation_failed"}
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field name -> messages (422 and 409 only)."},
    )
    request_id = fields.String()


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


def load_json(schema: Schema) -> dict[str, Any]:
    """Parse the JSON body with a schema: 415 if not JSON, 400 if malformed, 422 if invalid."""
    try:
        data = request.get_json()
    except BadRequest as e:
        raise BadRequest("The body is not valid JSON.") from e
    except RecursionError as e:  # json.loads on "[[[[..." overflows the stack
        raise BadRequest("The JSON body is nested too deeply.") from e
    result: dict[str, Any] = schema.load(data)
    return result


def load_query(schema: Schema) -> dict[str, Any]:
    """Parse the query string with a schema; 422 if invalid."""
    result: dict[str, Any] = schema.load(request.args.to_dict())
    return result
