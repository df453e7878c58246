"""The auth namespace: register, log in, refresh and log out; minting and delivering tokens."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, current_app, jsonify, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
)
from flask_restx import Resource
from sqlalchemy import select, update

from app.audit import record
from app.errors import ApiError
from app.extensions import api, db
from app.hashslots import hashing_slot
from app.identity import authenticate, current_user, token_claims
from app.logs import security_event
from app.markers import public
from app.models import RefreshSession, RevokedToken, User, end_sessions, normalise_email, spend_one_hash, utcnow
from app.openapi import BODY_ERRORS, model, problems
from app.ratelimit import limit, login_account_key
from app.schemas import LoginSchema, RegisterSchema, TokenSchema, UserSchema, load_json
from app.users import ETAG, create_user, created, no_content

ns = api.namespace("auth", description="Accounts and tokens")


def new_jti() -> str:
    return str(uuid.uuid4())


def issue_tokens(user: User, session: RefreshSession) -> dict[str, Any]:
    """Mint an access token and the session's current refresh token (never past its expiry)."""
    claims = {"sid": str(session.id)}
    access_life: timedelta = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return {
        "access_token": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh_token": create_refresh_token(
            identity=str(user.id),
            additional_claims={**claims, "jti": session.current_jti},
            expires_delta=session.expires_at - utcnow(),
        ),
        "token_type": "Bearer",
        "expires_in": int(access_life.total_seconds()),
    }


def deliver(tokens: dict[str, Any]) -> Response:
    """The token pair as JSON; in cookie mode as HttpOnly cookies instead, so page scripts never
    hold a token (the readable csrf_* cookies feed the X-CSRF-TOKEN header of the double submit)."""
    if not current_app.config["AUTH_COOKIES"]:
        return jsonify(tokens)
    response = jsonify({"token_type": "cookie", "expires_in": tokens["expires_in"]})
    set_access_cookies(response, tokens["access_token"])
    set_refresh_cookies(response, tokens["refresh_token"])
    return response


@ns.route("/register")
class Register(Resource):
    @public
    @ns.doc(security=[])
    @ns.expect(model(RegisterSchema))
    @ns.response(201, "Account created", model(UserSchema), headers=ETAG)
    @problems(*BODY_ERRORS, 409)
    @limit("RATELIMIT_REGISTER_IP")
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create an account."""
        return created(create_user(load_json(RegisterSchema()), "user.registered"))


def login_failed(email: str, user: User | None, status: int, code: str, detail: str) -> ApiError:
    """Record a refused login, committed now as the request ends in an error; the error to raise."""
    record("login.failed", None, user.id if user else None, email=email, reason=code)
    db.session.commit()
    return ApiError(status, code, detail)


@ns.route("/login")
class Login(Resource):
    @public
    @ns.doc(security=[])
    @ns.expect(model(LoginSchema))
    @ns.response(200, "Logged in", model(TokenSchema))
    @problems(*BODY_ERRORS, 401, 403)
    @limit("RATELIMIT_LOGIN_IP")
    @limit("RATELIMIT_LOGIN_ACCOUNT", login_account_key, failures_only=True)
    def post(self) -> Response:
        """Exchange email and password for an access and a refresh token."""
        data = load_json(LoginSchema())
        # The slot first: in a flood, a login refused for want of one then costs no database work.
        with hashing_slot():
            user = db.session.scalar(select(User).where(User.email == normalise_email(data["email"])))
            if user is None:
                spend_one_hash(data["password"])
            if user is None or not user.check_password(data["password"]) or not user.is_active:
                detail = "The email or password is incorrect."
                raise login_failed(data["email"], user, 401, "invalid_credentials", detail)
        if current_app.config["REQUIRE_VERIFIED_EMAIL"] and user.email_verified_at is None:
            detail = "Verify your email address first: use the mailed link, or reset your password to get a new one."
            raise login_failed(data["email"], user, 403, "email_not_verified", detail)
        session = RefreshSession(
            id=uuid.uuid4(),
            user_id=user.id,
            current_jti=new_jti(),
            expires_at=utcnow() + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
            user_agent=request.user_agent.string[:255] or None,
            ip=request.remote_addr,
        )
        tokens = issue_tokens(user, session)
        db.session.add(session)
        record("login.succeeded", user.id, user.id, session_id=str(session.id))
        db.session.commit()
        return deliver(tokens)


@ns.route("/refresh")
class Refresh(Resource):
    @public
    @ns.doc(
        description="Send the refresh token as `Authorization: Bearer <refresh_token>`. "
        "Each refresh token works once; reusing one ends the whole session."
    )
    @ns.response(200, "A new token pair", model(TokenSchema))
    @problems(401)
    @limit("RATELIMIT_REFRESH_IP")
    def post(self) -> Response:
        """Rotate a refresh token into a new token pair."""
        authenticate("refresh")
        claims = token_claims("refresh")
        session_id = uuid.UUID(claims["sid"])
        # Compare-and-swap: only the session's current token rotates, and only once, even
        # when two requests race with it; any other use is a replay of a rotated token.
        session = db.session.scalar(
            update(RefreshSession)
            .where(RefreshSession.id == session_id, RefreshSession.current_jti == claims["jti"])
            .values(current_jti=new_jti(), last_used_at=utcnow())
            .returning(RefreshSession)
        )
        if session is None:
            end_sessions(RefreshSession.id == session_id)
            record("refresh_token.reused", None, current_user.id, session_id=str(session_id))
            db.session.commit()
            raise ApiError(401, "refresh_token_reused", "This refresh token was already used; the session has ended.")
        tokens = issue_tokens(current_user, session)
        db.session.commit()
        return deliver(tokens)


@ns.route("/logout")
class Logout(Resource):
    @ns.response(204, "Logged out")
    @problems(401)
    def post(self) -> Response:
        """End this session: the access token and its refresh token stop working."""
        claims = token_claims()
        end_sessions(RefreshSession.id == uuid.UUID(claims["sid"]))
        db.session.add(RevokedToken(jti=claims["jti"], expires_at=datetime.fromtimestamp(claims["exp"], UTC)))
        db.session.commit()
        security_event("logout", session_id=claims["sid"])
        response = no_content()
        if current_app.config["AUTH_COOKIES"]:
            unset_jwt_cookies(response)
        return response
