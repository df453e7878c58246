"""The auth namespace (register, login, refresh, logout) and who the caller is."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    current_user,
    get_jwt,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_restx import Resource
from jwt import MissingRequiredClaimError
from sqlalchemy import exists, select, update

from app.audit import record
from app.errors import ApiError
from app.extensions import api, db, jwt
from app.logs import security_event
from app.markers import marked, public
from app.models import RefreshSession, RevokedToken, User, end_sessions, normalise_email, spend_one_hash, utcnow
from app.openapi import BODY_ERRORS, model, problems
from app.ratelimit import limit, login_account_key
from app.schemas import LoginSchema, RegisterSchema, TokenSchema, UserSchema, load_json
from app.users import ETAG, create_user, created, no_content

ns = api.namespace("auth", description="Accounts and tokens")

PUBLIC_ENDPOINTS = {"static", "restx_doc.static", "doc", "specs", "root"}


def require_access_token() -> None:
    """Deny by default: every endpoint needs a valid access token unless marked @public."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS" or request.url_rule is None:
        return  # library docs and static files; CORS preflights; unknown URLs (a plain 404)
    if not marked("public"):
        verify_jwt_in_request()


REQUIRED_CLAIMS = ("sub", "sid", "jti", "type", "iat", "exp", "iss", "aud")


@jwt.decode_key_loader
def decoding_key(_header: dict[str, Any], raw_claims: dict[str, Any]) -> str:
    """Refuse tokens missing a claim we always write; the library would quietly default `type`
    and `jti` otherwise. This hook is the one that sees the claims before those defaults."""
    for claim in REQUIRED_CLAIMS:
        if claim not in raw_claims:
            raise MissingRequiredClaimError(claim)
    key: str = current_app.config["JWT_SECRET_KEY"]
    return key


@jwt.user_lookup_loader
def load_caller(_header: dict[str, Any], claims: dict[str, Any]) -> User | None:
    """Resolve a token to its user in one query; None (401) unless everything still holds."""
    try:
        user_id, session_id = uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])
        jti, kind = claims["jti"], claims["type"]
    except (KeyError, TypeError, ValueError):
        return None  # fail closed on tokens we did not shape
    if not isinstance(jti, str) or kind not in ("access", "refresh"):
        return None
    stmt = (
        select(User)
        .join(RefreshSession, RefreshSession.user_id == User.id)
        .where(User.id == user_id, User.is_active, RefreshSession.id == session_id)
        .where(RefreshSession.revoked_at.is_(None))
    )
    if kind == "access":
        stmt = stmt.where(~exists().where(RevokedToken.jti == jti))
    user: User | None = db.session.scalar(stmt)
    return user


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
        user = db.session.scalar(select(User).where(User.email == normalise_email(data["email"])))
        if user is None:
            spend_one_hash(data["password"])
        if user is None or not user.check_password(data["password"]) or not user.is_active:
            raise login_failed(data["email"], user, 401, "invalid_credentials", "The email or password is incorrect.")
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
        verify_jwt_in_request(refresh=True)
        claims = get_jwt()
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
        claims = get_jwt()
        end_sessions(RefreshSession.id == uuid.UUID(claims["sid"]))
        db.session.add(RevokedToken(jti=claims["jti"], expires_at=datetime.fromtimestamp(claims["exp"], UTC)))
        db.session.commit()
        security_event("logout", session_id=claims["sid"])
        response = no_content()
        if current_app.config["AUTH_COOKIES"]:
            unset_jwt_cookies(response)
        return response


def init_app(app: Flask) -> None:
    app.before_request(require_access_token)
