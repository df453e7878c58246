"""A batteries-included Flask REST API service."""

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import (  # noqa: F401 (the route modules register their routes on import)
    account,
    audit_events,
    auth,
    cli,
    config,
    errors,
    headers,
    health,
    identity,
    logs,
    metrics,
    ratelimit,
    sessions,
    users,
)
from app.extensions import api, cors, db, jwt


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config, checks, extensions, API, error handlers, CLI. No I/O."""
    app = Flask(__name__)
    app.config.from_mapping(config.load(overrides))
    # First: the checks may log, and their request hooks must wrap every other extension's.
    logs.init_app(app)
    metrics.init_app(app)
    config.check(app.config)
    app.logger.setLevel(app.config["LOG_LEVEL"])
    if hops := app.config["PROXY_HOPS"]:
        # Trust exactly the proxies we run; more would let clients spoof their IP.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    db.init_app(app)
    jwt.init_app(app)
    cors.init_app(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}})
    api.init_app(app, add_specs=app.config["DOCS_ENABLED"], title=app.config["APP_NAME"])
    ratelimit.init_app(app)  # before auth, so a flood is refused before it costs a database query
    identity.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    cli.init_app(app)
    return app
