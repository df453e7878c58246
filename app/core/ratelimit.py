"""Rate limits (Flask-Limiter): per account and per IP on auth flows, a quota per caller elsewhere."""

import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.core.errors import ApiError
from app.toolkit.identity import decoded
from app.toolkit.markers import marked

F = Callable[..., Any]
T = TypeVar("T")


def _by_address() -> str:
    return "ip:" + get_remote_address()


def caller_key() -> str:
    """The caller's identity for the general quota: a validly signed token's subject, else the IP.

    Only the signature is checked here (no database work), so a flood is refused before it costs
    a query, and nobody can spend another user's quota without their token. The token is decoded
    once per request; authentication reuses it.
    """
    try:
        return "user:" + str(decoded()[0]["sub"])
    except ApiError:
        return _by_address()


def _never_raises(check: Callable[[], T], fallback: Callable[[], T]) -> Callable[[], T]:
    """The check (a key or exempt_when function), or the fallback's answer when it fails, logged as itself.
    Flask-Limiter takes any exception in a limit check for a storage outage and falls back to per-process
    counters, so a request that broke a check would switch the shared limits off for its worker, and the
    log would blame Redis."""

    @wraps(check)
    def guarded() -> T:
        try:
            return check()
        except Exception:
            current_app.logger.exception("ratelimit.check_failed", extra={"check": check.__name__})
            return fallback()

    return guarded


def _setting(name: str) -> Callable[[], str]:
    # Limits are read from the current app's settings on each request, so every app (and test)
    # enforces its own values even though the limiter is a process-wide singleton.
    return lambda: str(current_app.config[name])


def limit(
    setting: str,
    key: Callable[[], str] = get_remote_address,
    *,
    failures_only: bool = False,
    counts: Callable[[Response], bool] | None = None,
    exempt_when: Callable[[], bool] | None = None,
    shared: bool = False,
) -> Callable[[F], F]:
    """Apply the rate limit named by a setting, to each endpoint it decorates on its own, or with shared
    to all of them together. Every request counts, unless failures_only (only 401 answers count) or
    counts (only the answers it accepts count); a caller at the limit is refused before the handler
    runs either way. A request exempt_when accepts neither counts nor is refused."""
    deduct_when = counts or ((lambda response: response.status_code == 401) if failures_only else None)
    exempt = _never_raises(exempt_when, lambda: False) if exempt_when else None  # failing: the limit applies
    options: dict[str, Any] = {
        "key_func": _never_raises(key, _by_address),
        "deduct_when": deduct_when,
        "exempt_when": exempt,
    }
    if shared:
        # On top of the per-caller quota, not instead of it: restx sends every method of a resource
        # through one view, and once a decorated method has run Flask-Limiter applies its limits to the
        # whole endpoint; one that replaced the quota on PATCH /users/me would take it off GET too.
        options["override_defaults"] = False
        decorator: Callable[[F], F] = limiter.shared_limit(_setting(setting), scope=setting, **options)
    else:
        decorator = limiter.limit(_setting(setting), scope=setting, **options)
    return decorator


# The limiter lives here rather than in extensions.py because its default key is caller_key.
limiter = Limiter(
    key_func=_never_raises(caller_key, _by_address),
    default_limits=[_setting("RATELIMIT_PER_CALLER")],
    # Rate-limit headers on every response would cost two more Redis round trips per request;
    # only a 429 carries them (see _explain_429).
    headers_enabled=False,
    # If Redis goes away, each process keeps limiting on its own instead of failing every request.
    in_memory_fallback_enabled=True,
)
limiter.request_filter(lambda: marked("exempt"))


def _explain_429(response: Response) -> Response:
    """Say on a 429 which limit was hit and when its window ends. Retry-After is rounded up from
    that end, so a client that waits exactly as told gets through (Flask-Limiter truncates it)."""
    current = limiter.current_limit if response.status_code == 429 else None
    if current is not None:
        reset = current.reset_at  # at or past the window's end
        response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
        response.headers["X-RateLimit-Remaining"] = str(current.remaining)
        response.headers["X-RateLimit-Reset"] = str(reset)
        response.headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
    return response


def init_app(app: Flask) -> None:
    app.after_request(_explain_429)
    limiter.init_app(app)
