"""The accounts' payloads: the one definition of each, for validation and for the docs."""

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.accounts.models import ROLES, normalise_email
from app.accounts.passwords import PASSWORD_MAX_LENGTH, password_problem
from app.toolkit.schemas import Bool, Choice, ListQuerySchema, PageSchema, Text, page_items, storable

SORTS = ("created_at", "email")
ORDERS = ("asc", "desc")


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
        return normalise_email(storable(super()._deserialize(value, attr, data, **kwargs)))


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
    id = fields.UUID(required=True)
    email = fields.Email(required=True)
    display_name = fields.String(required=True)
    role = Choice("Role", ROLES, required=True)
    is_active = fields.Boolean(required=True)
    email_verified_at = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "When the current email was verified; null: not yet."}
    )
    pending_email = fields.Email(
        required=True,
        allow_none=True,
        metadata={
            "description": "An address the account is moving to once the token mailed there is sent to "
            "POST /auth/verify-email; until then `email` stays the account's. Null: no change pending."
        },
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


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
    role = Choice("Role", ROLES, load_default="user")
    is_active = Bool(load_default=True)


class LoginSchema(Schema):
    email = _email(required=True)
    password = Text(required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX_LENGTH))
    device_token = Text(
        load_only=True,
        validate=validate.Length(max=1024),
        metadata={
            "description": "The device_token an earlier login to this account gave this client: while strangers' "
            "failed guesses hold the account at its limit, a client showing one still logs in."
        },
    )


class MfaLoginSchema(Schema):
    mfa_token = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "The mfa_token of the 403 mfa_required that POST /auth/login answered."},
    )
    code = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=32),
        metadata={
            "description": "A 6-digit code from your authenticator app, or a recovery code.",
            "example": "123456",
        },
    )


class TokenSchema(Schema):
    access_token = fields.String(
        required=True, metadata={"description": "Absent in cookie mode (AUTH_COOKIES).", "omitted_if": "AUTH_COOKIES"}
    )
    refresh_token = fields.String(
        required=True, metadata={"description": "Absent in cookie mode (AUTH_COOKIES).", "omitted_if": "AUTH_COOKIES"}
    )
    token_type = Choice("TokenType", ("Bearer", "cookie"), required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds until the access token expires."})


class LoginTokenSchema(TokenSchema):
    """A login's answer: the token pair, and the device token a refresh does not renew."""

    device_token = fields.String(
        required=True,
        metadata={
            "description": "Keep it and send it with this account's next logins (`device_token`): it marks this "
            "client as one that logged in before. In cookie mode the HttpOnly __Host-device cookie instead.",
            "omitted_if": "AUTH_COOKIES",
        },
    )


def _mfa_code(**kwargs: Any) -> Text:
    return Text(
        load_only=True,
        validate=validate.Length(min=1, max=32),
        metadata={
            "description": "While the caller's MFA is on, required with current_password: a code from the "
            "authenticator app, or a recovery code."
        },
        **kwargs,
    )


class ProfileUpdateSchema(Schema):
    """What a user may change about themselves; role and is_active are not here on purpose."""

    email = _email()
    display_name = _name()
    current_password = Text(
        load_only=True,
        validate=validate.Length(max=PASSWORD_MAX_LENGTH),
        metadata={
            "description": "The caller's own password (an admin's, when changing someone else). Required to change "
            "`email`, which then waits for the new address to confirm; checked whenever it is sent."
        },
    )
    mfa_code = _mfa_code()


class AdminUserUpdateSchema(ProfileUpdateSchema):
    role = Choice("Role", ROLES)
    is_active = Bool()


class PasswordChangeSchema(Schema):
    current_password = Text(required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX_LENGTH))
    new_password = _new_password(required=True)
    mfa_code = _mfa_code()


class UserListQuerySchema(ListQuerySchema):
    email = Text(validate=validate.Length(max=254), metadata={"description": "Substring of the email."})
    name = Text(validate=validate.Length(max=100), metadata={"description": "Substring of the display name."})
    role = Choice("Role", ROLES)
    is_active = fields.Boolean()
    sort = Choice("UserSort", SORTS, load_default="created_at")
    order = Choice("SortOrder", ORDERS, load_default="asc")


class UserPageSchema(PageSchema):
    items = page_items(UserSchema)


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
