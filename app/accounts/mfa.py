"""The mfa namespace: turn TOTP on and off, recovery codes, and an admin's reset of someone's MFA.

The second login step, POST /auth/login/mfa, is on the auth namespace beside the first.
"""

import uuid
from typing import Any

from marshmallow import Schema, fields, validate

from app.accounts.factors import (
    begin_enrolment,
    confirm_enrolment,
    factor,
    limit_code_guesses,
    mfa_enabled,
    new_recovery_codes,
    off_notice,
    prove_code,
    recovery_codes_left,
    turn_off,
)
from app.accounts.models import User
from app.accounts.passwords import PASSWORD_MAX_LENGTH
from app.accounts.service import limit_password_guesses, prove_password
from app.audit.trail import record
from app.core.extensions import db
from app.core.mail import send
from app.core.ratelimit import limit
from app.toolkit import ApiError, Namespace, Resource, Text, admin_only, body, errors, me, operation, response

ns = Namespace("mfa", description="Multi-factor authentication: TOTP and recovery codes", path="/")


def _password(**kwargs: Any) -> Text:
    return Text(
        load_only=True,
        validate=validate.Length(max=PASSWORD_MAX_LENGTH),
        metadata={"description": "Your current password."},
        **kwargs,
    )


def _code(description: str, **kwargs: Any) -> Text:
    return Text(
        load_only=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": description, "example": "123456"},
        **kwargs,
    )


class PasswordProofSchema(Schema):
    current_password = _password(required=True)


class MfaCodeSchema(Schema):
    code = _code("A 6-digit code from your authenticator app.", required=True)


class StepUpSchema(Schema):
    """The password and, while MFA is on, a current code."""

    current_password = _password(required=True)
    code = _code("Required while MFA is on: a 6-digit code from your authenticator app, or a recovery code.")


class MfaStatusSchema(Schema):
    enabled = fields.Boolean(required=True)
    enabled_at = fields.DateTime(required=True, allow_none=True)
    recovery_codes_left = fields.Integer(required=True, metadata={"description": "Unused recovery codes."})


class MfaEnrolmentSchema(Schema):
    secret = fields.String(
        required=True, metadata={"description": "The TOTP secret (base32), for apps that cannot read the URI."}
    )
    provisioning_uri = fields.String(
        required=True,
        metadata={
            "description": "An otpauth:// URI to show as a QR code; the issuer is APP_NAME.",
            "example": "otpauth://totp/Flask%20API%20starter:ada%40example.com?secret=JBSWY3DPEHPK3PXP",
        },
    )


class NewRecoveryCodesSchema(Schema):
    recovery_codes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Single-use codes for when the authenticator is lost; shown this once only."},
    )


def status(user_id: uuid.UUID) -> dict[str, Any]:
    found = factor(user_id)
    enabled_at = found.confirmed_at if found else None
    return {
        "enabled": enabled_at is not None,
        "enabled_at": enabled_at,
        "recovery_codes_left": recovery_codes_left(user_id),
    }


def step_up(user: User, data: dict[str, Any]) -> None:
    """The password, then (MFA on) a code: 422 if either is wrong; 409 if MFA is off."""
    prove_password(user, data["current_password"])
    if not mfa_enabled(user.id):
        raise ApiError(409, "mfa_not_enabled", "MFA is not on for this account.")
    prove_code(user, data.get("code"))


@ns.route("/mfa")
class Mfa(Resource):
    @operation("getMfa")
    @response(MfaStatusSchema, description="Whether MFA is on")
    def get(self) -> dict[str, Any]:
        """Show whether MFA is on for your account and how many recovery codes are left."""
        return status(me().id)


@ns.route("/mfa/enrolment")
class Enrolment(Resource):
    @operation("startMfaEnrolment")
    @body(PasswordProofSchema)
    @response(MfaEnrolmentSchema, description="A new secret; confirm it with a first code")
    @errors(409)
    @limit("RATELIMIT_PASSWORD_IP")
    @limit_password_guesses
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """Start turning MFA on (needs your password): a TOTP secret and its otpauth:// URI."""
        user = me()
        prove_password(user, data["current_password"])
        enrolment = begin_enrolment(user)
        db.session.commit()
        return enrolment


@ns.route("/mfa/enrolment/confirm")
class EnrolmentConfirm(Resource):
    @operation("confirmMfaEnrolment")
    @body(MfaCodeSchema)
    @response(NewRecoveryCodesSchema, description="MFA is on; the recovery codes, shown this once")
    @errors(409)
    @limit_code_guesses
    def post(self, data: dict[str, Any]) -> dict[str, list[str]]:
        """Turn MFA on with a first code from your authenticator app; get your recovery codes."""
        codes = confirm_enrolment(me(), data["code"])
        db.session.commit()
        return {"recovery_codes": codes}


@ns.route("/mfa/disable")
class Disable(Resource):
    @operation("disableMfa")
    @body(StepUpSchema)
    @response(None, 204, "MFA is off")
    @errors(409)
    @limit("RATELIMIT_PASSWORD_IP")
    @limit_password_guesses
    @limit_code_guesses
    def post(self, data: dict[str, Any]) -> None:
        """Turn MFA off (needs your password and a code); a notice goes to your address."""
        user = me()
        step_up(user, data)
        turn_off(user)
        record("mfa.disabled", user.id, user.id)
        notice = off_notice(user, "by you")
        send(notice)  # into the outbox, in the transaction that makes the change
        db.session.commit()


@ns.route("/mfa/recovery-codes")
class RecoveryCodes(Resource):
    @operation("regenerateRecoveryCodes")
    @body(StepUpSchema)
    @response(NewRecoveryCodesSchema, description="New recovery codes, shown this once; the old ones no longer work")
    @errors(409)
    @limit("RATELIMIT_PASSWORD_IP")
    @limit_password_guesses
    @limit_code_guesses
    def post(self, data: dict[str, Any]) -> dict[str, list[str]]:
        """Replace your recovery codes (needs your password and a code)."""
        user = me()
        step_up(user, data)
        codes = new_recovery_codes(user.id)
        record("mfa.recovery_codes_regenerated", user.id, user.id)
        db.session.commit()
        return {"recovery_codes": codes}


@ns.route("/users/<uuid:user_id>/mfa/reset")
@ns.param("user_id", "The user's id (a UUID)")
class AdminReset(Resource):
    @operation("resetUserMfa")
    @admin_only
    @body(StepUpSchema)
    @response(None, 204, "The user's MFA is off; they were mailed a notice")
    @errors(404, 409)
    @limit("RATELIMIT_PASSWORD_IP")
    @limit_password_guesses
    @limit_code_guesses
    def post(self, data: dict[str, Any], user_id: uuid.UUID) -> None:
        """Turn off a user's MFA when they lost their authenticator (admin; your password and code)."""
        admin = me()
        prove_password(admin, data["current_password"])
        prove_code(admin, data.get("code"))
        user = db.get_or_404(User, user_id)
        if factor(user.id) is None:
            raise ApiError(409, "mfa_not_enabled", "MFA is not on for this user.")
        turn_off(user)
        record("mfa.reset", admin.id, user.id)
        notice = off_notice(user, "by an administrator")
        send(notice)  # into the outbox, in the transaction that makes the change
        db.session.commit()
