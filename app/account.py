"""Password reset and email verification, on the auth namespace: tokens travel by mail."""

from typing import Any

from flask import Response
from flask_restx import Resource
from marshmallow import ValidationError
from sqlalchemy import select

from app.audit import record
from app.auth import ns
from app.errors import ApiError
from app.extensions import db
from app.identity import current_user, me
from app.mail import send
from app.markers import public
from app.models import RefreshSession, User, end_sessions, utcnow
from app.onetime import password_reset_mail, redeem, verification_mail
from app.openapi import BODY_ERRORS, model, problems
from app.ratelimit import caller_key, limit, login_account_key
from app.schemas import (
    AcceptedSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    VerifyEmailSchema,
    load_json,
    password_problem,
)
from app.users import no_content

RESET_REQUESTED = {"detail": "If an account uses this address, a password-reset mail is on its way to it."}
REDEEM_ERRORS = "400: `token_invalid`, `token_used` or `token_expired` (or a body the HTTP layer refuses)."


@ns.route("/password-reset")
class PasswordReset(Resource):
    @public
    @ns.doc(security=[], description="The answer is the same whether or not the address has an account.")
    @ns.expect(model(PasswordResetRequestSchema))
    @ns.response(202, "A mail is sent if the address has an account", model(AcceptedSchema))
    @problems(*BODY_ERRORS)
    @limit("RATELIMIT_PASSWORD_RESET_IP")
    @limit("RATELIMIT_PASSWORD_RESET_EMAIL", login_account_key)
    def post(self) -> tuple[dict[str, Any], int]:
        """Mail a single-use password-reset token to an account's address."""
        email = load_json(PasswordResetRequestSchema())["email"]
        user = db.session.scalar(select(User).where(User.email == email, User.is_active))
        mail = password_reset_mail(email, user)
        record("password.reset_requested", None, user.id if user else None, email=email)
        db.session.commit()
        if mail:
            send(mail)
        return RESET_REQUESTED, 202


@ns.route("/password-reset/confirm")
class PasswordResetConfirm(Resource):
    @public
    @ns.doc(security=[], description=REDEEM_ERRORS)
    @ns.expect(model(PasswordResetConfirmSchema))
    @ns.response(204, "Password changed; every session of the account has ended")
    @problems(*BODY_ERRORS)
    def post(self) -> Response:
        """Set a new password with a mailed reset token; every session of the account ends."""
        data = load_json(PasswordResetConfirmSchema())
        user = redeem(data["token"], "password_reset")
        if problem := password_problem(data["new_password"], user.email):
            raise ValidationError(problem, "new_password")
        user.set_password(data["new_password"])
        user.email_verified_at = user.email_verified_at or utcnow()  # the mail reached the address's owner
        end_sessions(RefreshSession.user_id == user.id)
        record("password.reset", user.id, user.id)
        db.session.commit()
        return no_content()


@ns.route("/verify-email")
class VerifyEmail(Resource):
    @public
    @ns.doc(security=[], description=REDEEM_ERRORS)
    @ns.expect(model(VerifyEmailSchema))
    @ns.response(204, "Email address verified")
    @problems(*BODY_ERRORS)
    def post(self) -> Response:
        """Verify your email address with the token mailed to it."""
        user = redeem(load_json(VerifyEmailSchema())["token"], "verify_email")
        user.email_verified_at = utcnow()
        record("email.verified", user.id, user.id, email=user.email)
        db.session.commit()
        return no_content()


@ns.route("/verify-email/resend")
class ResendVerification(Resource):
    @ns.response(202, "A new verification mail is on its way", model(AcceptedSchema))
    @problems(401, 409)
    @limit("RATELIMIT_VERIFY_RESEND", caller_key)
    def post(self) -> tuple[dict[str, Any], int]:
        """Mail a new verification token to your email address."""
        if current_user.email_verified_at is not None:
            raise ApiError(409, "email_already_verified", "Your email address is already verified.")
        mail = verification_mail(me())
        db.session.commit()
        send(mail)
        return {"detail": f"A verification mail is on its way to {current_user.email}."}, 202
