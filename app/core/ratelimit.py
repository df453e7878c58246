"""Rate limits: per account and per IP on auth flows (Flask-Limiter, exact in Redis), and a quota per
caller on every endpoint (app/core/quota.py, counted in each process and added to Redis in batches)."""

import math
import time
from collections.abc import Callable
from functools import partial, wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import TooManyRequests

from app.core import hooks
from app.core.errors import ApiError
from app.core.quota import Quota, parse_limit
from app.toolkit.identity import decoded
from app.toolkit.markers import handler, marked

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
    if not shared:
        # Flask-Limiter let such a limit replace the default quota; the quota, now our own, does so too.
        decorator = limiter.limit(_setting(setting), scope=setting, **options)
        return lambda func: decorator(_marked(func, "replaces_quota", "rate_limited"))
    # On top of the per-caller quota, not instead of it: restx sends every method of a resource
    # through one view, and once a decorated method has run Flask-Limiter applies its limits to the
    # whole endpoint.
    options["override_defaults"] = False
    shared_decorator: Callable[[F], F] = limiter.shared_limit(_setting(setting), scope=setting, **options)
    return lambda func: shared_decorator(_marked(func, "rate_limited"))


def _marked(func: F, *markers: str) -> F:
    for marker in markers:
        setattr(func, marker, True)
    return func


# The limiter lives here rather than in extensions.py because its key is caller_key unless a limit names one.
limiter = Limiter(
    key_func=_never_raises(caller_key, _by_address),
    # Rate-limit headers on every response would cost two more Redis round trips per request;
    # only a 429 carries them (see _explain_429).
    headers_enabled=False,
    # If Redis goes away, each process keeps limiting on its own instead of failing every request.
    in_memory_fallback_enabled=True,
)
_quota_key = _never_raises(caller_key, _by_address)


def _check_quota() -> None:
    """Count the request against its caller's general quota; 429 past it. Probes (@exempt), handlers
    with a limit of their own (login, registration, ...) and requests for no endpoint (404) are not
    counted, as Flask-Limiter's default limit did not count them."""
    if not request.endpoint or not limiter.enabled:
        return
    view = handler()
    if getattr(view, "exempt", False) or getattr(view, "replaces_quota", False):
        return
    quota: Quota = current_app.extensions["quota"]
    verdict = quota.hit(_quota_key(), parse_limit(current_app.config["RATELIMIT_PER_CALLER"]))
    if not verdict.allowed:
        g.quota_verdict = verdict
        raise TooManyRequests(f"{current_app.config['RATELIMIT_PER_CALLER']}: the general quota per caller.")


def _explain_429(response: Response) -> Response:
    """Say on a 429 which limit was hit and when its window ends. Retry-After is rounded up from
    that end, so a client that waits exactly as told gets through (Flask-Limiter truncates it)."""
    if response.status_code != 429:
        return response
    current = limiter.current_limit
    if current is not None:
        amount, remaining, reset = current.limit.amount, current.remaining, current.reset_at  # at or past the end
    elif verdict := g.get("quota_verdict"):
        amount, remaining, reset = verdict.amount, 0, math.ceil(verdict.reset_at)
    else:
        return response
    response.headers["X-RateLimit-Limit"] = str(amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(reset)
    response.headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
    return response


def init_app(app: Flask) -> None:
    uri = str(app.config["RATELIMIT_STORAGE_URI"])
    redis_url = uri if uri.startswith(("redis://", "rediss://")) else None
    app.extensions["quota"] = Quota(redis_url, app.config["RATELIMIT_STORAGE_OPTIONS"], app.config["QUOTA_BATCH"])
    app.before_request(_check_quota)
    app.after_request(_explain_429)
    limiter.init_app(app)
    # Flask-Limiter is left only the limits of limit(): its hooks run for the handlers that have one.
    hooks.only_when(app, _of_limiter, lambda: marked("rate_limited"))


def _of_limiter(hook: Callable[..., Any]) -> bool:
    return getattr(hook, "__self__", None) is limiter or (isinstance(hook, partial) and limiter in hook.args)
