"""Per-handler markers (`@public`, `@exempt`) and how to read them for the current request."""

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

F = TypeVar("F", bound=Callable[..., Any])


def public(func: F) -> F:
    """Let a handler run without an access token (everything else needs one)."""
    func.public = True  # type: ignore[attr-defined]
    return func


def refresh_token(func: F) -> F:
    """Let a handler take a refresh token instead of an access token (it verifies it itself)."""
    func.public = True  # type: ignore[attr-defined]
    func.authenticates_with = "refresh"  # type: ignore[attr-defined]
    return func


def exempt(func: F) -> F:
    """Take a handler out of the general rate-limit quota (probes must answer however busy)."""
    func.exempt = True  # type: ignore[attr-defined]
    return func


def always_answered(func: F) -> F:
    """Serve a handler however long its request waited for a worker (cheap, and wanted most when busy)."""
    func.always_answered = True  # type: ignore[attr-defined]
    return func


def hashes_password(func: F) -> F:
    """Mark a public handler that checks a password: in a flood of them it is refused before any other work."""
    func.hashes_password = True  # type: ignore[attr-defined]
    return func


def marked(marker: str) -> bool:
    """Whether the handler about to serve this request carries a marker."""
    return bool(getattr(handler(), marker, False))


def handler() -> Any:
    """The function about to serve this request (None when no endpoint matched)."""
    if "handler" not in g:  # asked by several hooks of each request
        g.handler = _handler()
    return g.handler


def _handler() -> Any:
    view = current_app.view_functions.get(request.endpoint or "")
    # A restx Resource routes to one method per HTTP verb; a plain view is its own handler.
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, request.method.lower(), None)
    if handler is None and request.method == "HEAD":  # answered by get(), as Flask dispatches it
        handler = getattr(view_class, "get", None)
    return handler or view
