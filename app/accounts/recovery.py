"""The recovery namespace, under /auth: password reset and email verification, with tokens sent by mail."""

from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select

from app.accounts.models import User, void_mailed_tokens
from app.accounts.passwords import password_problem
from app.accounts.schemas import (
    AcceptedSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    VerifyEmailSchema,
)
from app.accounts.service import login_account_key, set_new_password
from app.accounts.tokens import password_reset_mail, redeem, verification_mail
from app.audit.trail import record
from app.core.database import utcnow
from app.core.extensions import db
from app.core.mail import send
from app.core.ratelimit import caller_key, limit
from app.toolkit import ApiError, Namespace, Resource, body, current_user, errors, me, operation, public, response

ns = Namespace("recovery", description="Password reset and email verification, by mail", path="/auth")

RESET_REQUESTED = {"detail": "If an account uses this address, a password-reset mail is on its way to it."}
REDEEM_ERRORS = "400: `token_invalid`, `token_used` or `token_expired` (or a body the HTTP layer refuses)."


@ns.route("/password-reset")
class PasswordReset(Resource):
    @operation("requestPasswordReset")
    @public
    @ns.doc(description="The answer is the same whether or not the address has an account.")
    @body(PasswordResetRequestSchema)
    @response(AcceptedSchema, 202, "A mail is sent if the address has an account")
    @limit("RATELIMIT_PASSWORD_RESET_IP")
    @limit("RATELIMIT_PASSWORD_RESET_EMAIL", login_account_key)
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """Mail a single-use password-reset token to an account's address."""
        email = data["email"]
        user = db.session.scalar(select(User).where(User.email == email, User.is_active))
        mail = password_reset_mail(email, user)
        record("password.reset_requested", None, user.id if user else None, email=email)
        if mail:
            send(mail)
        db.session.commit()
        return RESET_REQUESTED


@ns.route("/password-reset/confirm")
class PasswordResetConfirm(Resource):
    @operation("confirmPasswordReset")
    @public
    @ns.doc(description=REDEEM_ERRORS)
    @body(PasswordResetConfirmSchema)
    @response(None, 204, "Password changed; every session of the account has ended")
    def post(self, data: dict[str, Any]) -> None:
        """Set a new password with a mailed reset token; every session of the account ends."""
        user, _address = redeem(data["token"], "password_reset")
        if problem := password_problem(data["new_password"], user.email):
            raise ValidationError(problem, "new_password")
        notice = set_new_password(user, data["new_password"], "reset with a token mailed to this address")
        user.email_verified_at = user.email_verified_at or utcnow()  # the mail reached the address's owner
        record("password.reset", user.id, user.id)
        send(notice)
        db.session.commit()


@ns.route("/verify-email")
class VerifyEmail(Resource):
    @operation("verifyEmail")
    @public
    @ns.doc(
        description=REDEEM_ERRORS + " A token mailed to an address the account is moving to makes it the "
        "account's address; 409 if another account took it meanwhile."
    )
    @body(VerifyEmailSchema)
    @response(None, 204, "Email address verified")
    @errors(409)
    def post(self, data: dict[str, Any]) -> None:
        """Verify your email address, or confirm a new one, with the token mailed to it."""
        user, address = redeem(data["token"], "verify_email")
        if address == user.email:
            record("email.verified", user.id, user.id, email=address)
        else:  # the address the account is moving to: the move happens now
            record("user.email_changed", user.id, user.id, **{"from": user.email, "to": address})
            user.email, user.pending_email = address, None
            void_mailed_tokens(user)  # e.g. resets sent to the old address, should it ever come back
        user.email_verified_at = utcnow()
        db.session.commit()


@ns.route("/verify-email/resend")
class ResendVerification(Resource):
    @operation("resendVerification")
    @response(AcceptedSchema, 202, "A new verification mail is on its way")
    @errors(409)
    @limit("RATELIMIT_VERIFY_RESEND", caller_key)
    def post(self) -> dict[str, str]:
        """Mail a new verification token to your email address."""
        if current_user.email_verified_at is not None:
            raise ApiError(409, "email_already_verified", "Your email address is already verified.")
        send(verification_mail(me()))
        db.session.commit()
        return {"detail": f"A verification mail is on its way to {current_user.email}."}
