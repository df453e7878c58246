"""A batteries-included Flask REST API service."""

from collections.abc import Callable, Mapping
from types import FunctionType
from typing import Any

from flask import Flask, request

from app import api
from app.accounts import cli as accounts_cli
from app.core import cli, config, errors, hashing, headers, hooks, jsonio, logs, metrics, outbox, overload, ratelimit
from app.core.extensions import cors, db, jwt
from app.core.proxy import PublicOrigin, TrustedProxies
from app.toolkit import identity


class App(Flask):
    """Flask, remembering which functions are plain: it asks for every hook of every request."""

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        sync = self._sync.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            if isinstance(func, FunctionType):  # not bound methods: each is a new object, and would pile up
                self._sync[func] = sync
        return sync


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config, checks, extensions, API, error handlers, CLI. No I/O."""
    app = App(__name__)
    app.config.from_mapping(config.load(overrides))
    jsonio.init_app(app)
    # First: the checks may log, and their request hooks must wrap every other extension's.
    logs.init_app(app)
    metrics.init_app(app)
    overload.init_app(app)  # before any hook that would spend a stale request's time
    config.check(app.config)
    app.logger.setLevel(app.config["LOG_LEVEL"])
    headers.init_app(app)  # inside the proxy middleware below, which sets the scheme it reads
    if url := app.config["PUBLIC_URL"]:
        app.wsgi_app = PublicOrigin(app.wsgi_app, url)  # type: ignore[method-assign]
    if hops := app.config["PROXY_HOPS"]:
        # Trust exactly the proxies we run, and only when one of them is the peer: otherwise any
        # client could name its own IP. Never X-Forwarded-Host: every URL's host is PUBLIC_URL's.
        app.wsgi_app = TrustedProxies(app.wsgi_app, hops, app.config["FORWARDED_ALLOW_IPS"])  # type: ignore[method-assign]

    db.init_app(app)
    jwt.init_app(app)
    cors.init_app(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}})
    # flask-cors adds nothing to the answer of a request without an Origin header (no browser sent it).
    hooks.only_when(
        app,
        lambda hook: getattr(hook, "__name__", "") == "cors_after_request",
        lambda: "HTTP_ORIGIN" in request.environ,
    )
    api.init_app(app)
    hashing.init_app(app)  # a flood of password checks is refused before their rate limits cost Redis work
    ratelimit.init_app(app)  # before auth, so a flood is refused before it costs a database query
    identity.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    accounts_cli.init_app(app)
    outbox.init_app(app)
    return app
