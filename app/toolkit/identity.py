"""Who is calling: the request's token, verified once, and the live account and session it names.

flask-jwt-extended mints the tokens and sets the cookies, and its settings name them; verifying
them is here, because its verify path decodes every token three times and loads the caller
through the ORM, which made authentication most of the cost of a request (bench/README.md). Here
it is one PyJWT decode with every claim required, and one prebuilt Core query on an autocommit
connection: user active, session live and made since the last password change, token not revoked. So
revoked, disabled and deleted callers are still refused on their very next request.
"""

import hmac
import time
import uuid
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeAlias, TypeVar

import jwt
from flask import Flask, current_app, g, request
from flask.sessions import SessionInterface
from sqlalchemy import Row, bindparam, exists, select
from sqlalchemy.exc import DBAPIError
from werkzeug.local import LocalProxy

from app.accounts.models import RefreshSession, RevokedToken, User
from app.core.errors import ApiError
from app.core.extensions import db
from app.toolkit.markers import marked

REQUIRED_CLAIMS = ["sub", "sid", "jti", "type", "iat", "exp", "iss", "aud"]
# Everything a handler may read about the caller, without the password hash.
CALLER_COLUMNS = [column for column in User.__table__.c if column.key != "password_hash"]
PUBLIC_ENDPOINTS = {"static", "specs", "root", "docs.static", "docs.swagger_ui", "docs.openapi"}

Caller: TypeAlias = Row[*tuple[Any, ...]]
F = TypeVar("F", bound=Callable[..., Any])


def invalid_token(detail: str = "The token is invalid.") -> ApiError:
    return ApiError(401, "invalid_token", detail)


def token_expired() -> ApiError:
    return ApiError(401, "token_expired", "The token has expired; refresh it or log in again.")


def presented_token(kind: str) -> tuple[str, bool]:
    """The request's token and whether it came in a cookie; 401 if it carries none."""
    header = request.headers.get("Authorization")
    if header is None and current_app.config["AUTH_COOKIES"]:
        cookie = request.cookies.get(current_app.config[f"JWT_{kind.upper()}_COOKIE_NAME"])
        if cookie:
            return cookie, True
    scheme, _, token = (header or "").partition(" ")
    if scheme != "Bearer" or not token or " " in token:
        raise ApiError(401, "missing_token", "An access token is required (Authorization: Bearer ...).")
    return token, False


@lru_cache(maxsize=512)
def _verified(
    token: str, key: str, algorithms: tuple[str, ...], audience: str, issuer: str, leeway: int
) -> dict[str, Any]:
    """The token's claims, its signature and every claim checked now. Cached: a client sends the same
    token for many requests, and PyJWT's checks cost more than the rest of authentication. Only
    tokens that verified are kept (an exception is never cached); the key is part of the entry."""
    return jwt.decode(
        token,
        key,
        algorithms=list(algorithms),
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        options={"require": REQUIRED_CLAIMS},
    )


def decode(token: str) -> dict[str, Any]:
    """The claims of a token this app signed, with every claim we always write present and checked."""
    config = current_app.config
    try:
        claims = _verified(
            token,
            config["JWT_SECRET_KEY"],
            tuple(config["JWT_DECODE_ALGORITHMS"]),
            config["JWT_DECODE_AUDIENCE"],
            config["JWT_DECODE_ISSUER"],
            config["JWT_DECODE_LEEWAY"],
        )
    except jwt.ExpiredSignatureError:
        raise token_expired() from None
    except jwt.PyJWTError:
        raise invalid_token() from None
    # A cached token was valid when first seen; of its time checks only expiry can change since.
    if claims["exp"] <= time.time() - config["JWT_DECODE_LEEWAY"]:
        raise token_expired()
    return dict(claims)  # a copy: the cached claims are shared by every request with this token


def decoded(kind: str = "access") -> tuple[dict[str, Any], bool]:
    """The request's token, verified (once per request), and whether it came in a cookie."""
    token, from_cookie = presented_token(kind)
    cache = g.setdefault("decoded", {})
    if token not in cache:
        try:
            cache[token] = decode(token)
        except ApiError as e:
            cache[token] = e
    if isinstance(cache[token], ApiError):
        raise cache[token]
    return cache[token], from_cookie


def token_claims(kind: str = "access") -> dict[str, Any]:
    """The verified claims of the request's token of this kind; 401 if it has none, or the wrong kind."""
    claims, from_cookie = decoded(kind)
    if claims["type"] != kind:
        raise invalid_token()
    config = current_app.config
    if from_cookie and config["JWT_COOKIE_CSRF_PROTECT"] and request.method in config["JWT_CSRF_METHODS"]:
        # The double submit: a page on another site can send the cookie but cannot read it.
        sent = request.headers.get(config[f"JWT_{kind.upper()}_CSRF_HEADER_NAME"], "").encode()
        if not sent or not hmac.compare_digest(sent, str(claims.get("csrf", "")).encode()):
            raise ApiError(401, "csrf_failed", "The X-CSRF-TOKEN header must repeat the csrf cookie.")
    return claims


# Built once: constructing the statement costs as much as running it. Bound per request.
_LIVE_CALLER = (
    select(*CALLER_COLUMNS, (User.role == "admin").label("is_admin"))
    .join(RefreshSession, RefreshSession.user_id == User.id)
    .where(User.id == bindparam("user_id"), User.is_active)
    .where(RefreshSession.id == bindparam("session_id"), RefreshSession.revoked_at.is_(None))
    .where(RefreshSession.generation == User.session_generation)  # made before the last password change: over
)
CALLER_BY_TOKEN = {
    "access": _LIVE_CALLER.where(~exists().where(RevokedToken.jti == bindparam("jti"))),
    "refresh": _LIVE_CALLER,  # its jti is the session's current one; refresh checks that itself
}


def lookup(claims: dict[str, Any]) -> Caller | None:
    """The caller's user row if the user is active, the session live and the token not revoked."""
    try:
        params = {"user_id": uuid.UUID(claims["sub"]), "session_id": uuid.UUID(claims["sid"]), "jti": claims["jti"]}
    except (TypeError, ValueError, AttributeError):
        return None  # fail closed on tokens we did not shape
    stmt = CALLER_BY_TOKEN[claims["type"]]
    for attempt in (1, 2):
        try:
            with db.engines["reads"].connect() as connection:  # autocommit, unpinged: see config.py
                return connection.execute(stmt, params).one_or_none()
        except DBAPIError as e:
            if attempt == 2 or not e.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def authenticate(kind: str = "access") -> Caller:
    """Verify the request's token and load its caller, once per request; 401 unless all still holds."""
    if "caller" not in g:
        caller = lookup(token_claims(kind))
        if caller is None:
            raise invalid_token("The token is no longer valid.")
        g.caller = caller
    result: Caller = g.caller
    return result


def require_access_token() -> None:
    """Deny by default: every endpoint needs a valid access token unless marked @public."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS" or request.url_rule is None:
        return  # library docs and static files; CORS preflights; unknown URLs (a plain 404)
    if not marked("public"):
        authenticate()


def verified_subject() -> str | None:
    """The user id of a caller authenticated during this request (never an unverified claim)."""
    return str(g.caller.id) if "caller" in g else None


def me() -> User:
    """The caller as an ORM entity, for handlers that change it (reads use current_user)."""
    user = db.session.get(User, current_user.id)
    if user is None:  # deleted since the request was authenticated
        raise invalid_token("The token is no longer valid.")
    return user


# The caller's row: id, email, role, is_admin, version... Read-only; me() gives the ORM entity.
current_user: Any = LocalProxy(authenticate)


def admin_only(func: F) -> F:
    """Refuse (403) a caller whose role, read from the database this request, is not admin."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            raise ApiError(403, "forbidden", "This needs the admin role.")
        return func(*args, **kwargs)

    wrapper.admin_only = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class NoCookieSession(SessionInterface):
    """Callers are who their token says, never a signed session cookie, so Flask opens none: its
    cookie session costs every request a serializer and an HMAC for nothing (bench/README.md)."""

    def open_session(self, app: Flask, request: Any) -> None:
        return None  # Flask then hands out a NullSession, which refuses writes


def init_app(app: Flask) -> None:
    app.session_interface = NoCookieSession()
    app.before_request(require_access_token)
