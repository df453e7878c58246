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
from sqlalchemy import select, update

from app.accounts.devices import (
    DEVICE_COOKIE,
    DEVICE_TOKEN_LIFE,
    device_key,
    known_device,
    mint_device_token,
    unknown_device,
)
from app.accounts.factors import limit_code_guesses, mfa_enabled, mfa_required, redeem_challenge
from app.accounts.models import RefreshSession, RevokedToken, User, end_sessions, idle_since, normalise_email
from app.accounts.schemas import (
    AcceptedSchema,
    LoginSchema,
    LoginTokenSchema,
    MfaLoginSchema,
    RegisterSchema,
    TokenSchema,
    UserSchema,
)
from app.accounts.service import create_user, login_account_key, register_quietly
from app.audit.trail import record
from app.core.database import utcnow
from app.core.extensions import db
from app.core.hashing import hashing_slot, spend_one_hash
from app.core.logs import security_event
from app.core.ratelimit import limit
from app.toolkit import (
    Answer,
    ApiError,
    Namespace,
    Resource,
    alternative,
    body,
    created,
    current_user,
    errors,
    hashes_password,
    operation,
    public,
    refresh_token,
    response,
)
from app.toolkit.identity import authenticate, token_claims

ns = Namespace("auth", description="Accounts and tokens")


def new_jti() -> str:
    return str(uuid.uuid4())


def issue_tokens(user: Any, session: RefreshSession) -> dict[str, Any]:
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


def deliver(tokens: dict[str, Any], session: RefreshSession) -> dict[str, Any] | Response:
    """The token pair as JSON; in cookie mode as HttpOnly cookies instead, so page scripts never
    hold a token (the readable csrf_* cookies feed the X-CSRF-TOKEN header of the double submit)."""
    if not current_app.config["AUTH_COOKIES"]:
        return tokens
    response = jsonify({"token_type": "cookie", "expires_in": tokens["expires_in"]})
    if "device_token" in tokens:
        response.set_cookie(
            DEVICE_COOKIE,
            tokens["device_token"],
            max_age=int(DEVICE_TOKEN_LIFE.total_seconds()),
            secure=True,
            httponly=True,
            samesite="Strict",
            path="/",
        )
    # The cookies go when the session does, not a year on (flask-jwt-extended's default).
    life = max(0, int((session.expires_at - utcnow()).total_seconds()))
    set_access_cookies(response, tokens["access_token"], max_age=life)
    set_refresh_cookies(response, tokens["refresh_token"], max_age=life)
    return response


def signed_out() -> Response:
    """An empty 204 that, in cookie mode, also clears the token cookies."""
    response = Response(status=204, mimetype="application/json")
    if current_app.config["AUTH_COOKIES"]:
        unset_jwt_cookies(response)
    return response


REGISTRATION_ACCEPTED = {
    "detail": "If this address has no account yet, one was made: a mail to confirm the address is on its way. "
    "If it has one, its owner was told by mail."
}


@ns.route("/register")
class Register(Resource):
    @operation("register")
    @public
    @hashes_password
    @body(RegisterSchema)
    @response(UserSchema, 201, "Account created", etag=True)
    @alternative(
        AcceptedSchema,
        202,
        "Accepted, when REGISTRATION_ENUMERATION_SAFE=true: the account is made if the address is free, else "
        "the address's owner gets a mail; the answer does not tell which",
    )
    @errors(409)
    @limit("RATELIMIT_REGISTER_IP")
    def post(self, data: dict[str, Any]) -> tuple[User, dict[str, str]] | Answer:
        """Create an account."""
        if current_app.config["REGISTRATION_ENUMERATION_SAFE"]:
            register_quietly(data)
            return Answer(202, REGISTRATION_ACCEPTED)
        user = create_user(data, "user.registered")
        return created(user, "users_user_detail", user_id=user.id)  # its profile, on the users namespace


def login_failed(email: str, user: User | None, status: int, code: str, detail: str) -> ApiError:
    """Record a refused login, committed now as the request ends in an error; the error to raise."""
    record("login.failed", None, user.id if user else None, email=email, reason=code)
    db.session.commit()
    return ApiError(status, code, detail)


@ns.route("/login")
class Login(Resource):
    @operation("login")
    @public
    @hashes_password
    @body(LoginSchema)
    @ns.doc(
        description="Needs no token. Answers 200 (Logged in). With MFA on, the right password answers 403 "
        "`mfa_required` carrying an `mfa_token` and no tokens: finish with POST /auth/login/mfa."
    )
    @response(LoginTokenSchema, description="Logged in")
    @errors(401, 403)
    @limit("RATELIMIT_LOGIN_IP")
    # Strangers' failures cap the account, a known client's cap only that client: see devices.py.
    @limit("RATELIMIT_LOGIN_ACCOUNT", login_account_key, failures_only=True, exempt_when=known_device)
    @limit("RATELIMIT_LOGIN_DEVICE", device_key, failures_only=True, exempt_when=unknown_device)
    def post(self, data: dict[str, Any]) -> dict[str, Any] | Response:
        """Exchange email and password for an access and a refresh token."""
        # The slot first: in a flood, a login refused for want of one then costs no database work.
        with hashing_slot():
            # FOR KEY SHARE: an admin's racing DELETE waits for this login to commit, or this login waits
            # for the DELETE and finds no account; never a session for a row that went away meanwhile.
            account = select(User).where(User.email == normalise_email(data["email"]))
            user = db.session.scalar(account.with_for_update(read=True, key_share=True))
            if user is None:
                spend_one_hash(data["password"])
            if user is None or not user.check_password(data["password"]) or not user.is_active:
                detail = "The email or password is incorrect."
                raise login_failed(data["email"], user, 401, "invalid_credentials", detail)
        if current_app.config["REQUIRE_VERIFIED_EMAIL"] and user.email_verified_at is None:
            detail = "Verify your email address first: use the mailed link, or reset your password to get a new one."
            raise login_failed(data["email"], user, 403, "email_not_verified", detail)
        if mfa_enabled(user.id):
            raise mfa_required(user)  # no tokens until the second step, POST /auth/login/mfa
        return open_session(user)


@ns.route("/login/mfa")
class LoginMfa(Resource):
    @operation("loginMfa")
    @public
    @ns.doc(
        description="Needs no token. The second step of a login that answered 403 `mfa_required`: send its "
        "`mfa_token` with a code from your authenticator app or a recovery code. A challenge works once, for "
        "MFA_CHALLENGE_MINUTES, and dies after 5 wrong codes; wrong codes also count against RATELIMIT_MFA_ACCOUNT."
    )
    @body(MfaLoginSchema)
    @response(LoginTokenSchema, description="Logged in")
    @errors(401)
    @limit("RATELIMIT_LOGIN_IP")
    @limit_code_guesses
    def post(self, data: dict[str, Any]) -> dict[str, Any] | Response:
        """Finish a login with a code from your authenticator app or a recovery code."""
        return open_session(redeem_challenge(data["mfa_token"], data["code"]))


def open_session(user: User) -> dict[str, Any] | Response:
    """Start a login session for a user who proved who they are; its tokens, delivered."""
    session = RefreshSession(
        id=uuid.uuid4(),
        user_id=user.id,
        current_jti=new_jti(),
        generation=user.session_generation,  # as read with the password hash it was checked against
        expires_at=utcnow() + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
        user_agent=request.user_agent.string[:255] or None,
        ip=request.remote_addr,
    )
    tokens = {**issue_tokens(user, session), "device_token": mint_device_token(user.email)}
    db.session.add(session)
    record("login.succeeded", user.id, user.id, session_id=str(session.id))
    db.session.commit()
    return deliver(tokens, session)


@ns.route("/refresh")
class Refresh(Resource):
    @operation("refreshTokens")
    @refresh_token
    @ns.doc(
        description="Send the refresh token as `Authorization: Bearer <refresh_token>`. "
        "Each refresh token works once; reusing one ends the whole session, except the one just rotated, "
        "within REFRESH_GRACE_SECONDS (a client refreshing twice at once gets a pair of the same session). "
        "A session unused for SESSION_IDLE_MINUTES ends (401 session_expired)."
    )
    @response(TokenSchema, description="A new token pair")
    @errors(401)
    @limit("RATELIMIT_REFRESH_IP")
    def post(self) -> dict[str, Any] | Response:
        """Rotate a refresh token into a new token pair."""
        authenticate("refresh")
        claims = token_claims("refresh")
        session_id, jti, now = uuid.UUID(claims["sid"]), claims["jti"], utcnow()
        # Compare-and-swap: only the session's current token rotates, and only once, even when two
        # requests race with it (on Postgres the second waits for the first's row lock, then finds it moved).
        session = db.session.scalar(
            update(RefreshSession)
            .where(
                RefreshSession.id == session_id,
                RefreshSession.current_jti == jti,
                RefreshSession.last_used_at > idle_since(),
            )
            .values(current_jti=new_jti(), previous_jti=jti, rotated_at=now, last_used_at=now)
            .returning(RefreshSession)
        )
        if session is None:
            session = not_rotated(session_id, jti)
        tokens = issue_tokens(current_user, session)
        db.session.commit()
        return deliver(tokens, session)


def not_rotated(session_id: uuid.UUID, jti: str) -> RefreshSession:
    """The session for a refresh token that did not rotate: the one the last refresh just rotated, within
    REFRESH_GRACE_SECONDS (the same client racing itself); else 401, and the session ends. Replaying
    an older token, or this one later, is theft or a bug; a session left unused too long is over."""
    session = db.session.get(RefreshSession, session_id, populate_existing=True)
    assert session is not None  # authenticate() found it live
    grace = timedelta(seconds=current_app.config["REFRESH_GRACE_SECONDS"])
    if session.last_used_at <= idle_since():
        end_sessions(RefreshSession.id == session_id)
        db.session.commit()
        security_event("session.idle", session_id=str(session_id))
        raise ApiError(401, "session_expired", "The session was unused for too long; log in again.")
    if session.previous_jti == jti and session.rotated_at is not None and utcnow() - session.rotated_at < grace:
        return session  # its current token, minted again: a pair of the same session
    end_sessions(RefreshSession.id == session_id)
    record("refresh_token.reused", None, current_user.id, session_id=str(session_id))
    db.session.commit()
    raise ApiError(401, "refresh_token_reused", "This refresh token was already used; the session has ended.")


@ns.route("/logout")
class Logout(Resource):
    @operation("logout")
    @response(None, 204, "Logged out")
    def post(self) -> Response:
        """End this session: the access token and its refresh token stop working."""
        claims = token_claims()
        end_sessions(RefreshSession.id == uuid.UUID(claims["sid"]))
        db.session.add(RevokedToken(jti=claims["jti"], expires_at=datetime.fromtimestamp(claims["exp"], UTC)))
        db.session.commit()
        security_event("logout", session_id=claims["sid"])
        return signed_out()


@ns.route("/logout-all")
class LogoutAll(Resource):
    @operation("logoutAll")
    @response(None, 204, "Every session of yours has ended, this one too")
    def post(self) -> Response:
        """End every session of yours, on every device."""
        end_sessions(RefreshSession.user_id == current_user.id)
        record("sessions.revoked_all", current_user.id, current_user.id)
        db.session.commit()
        return signed_out()
