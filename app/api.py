"""The API: the restx Api, and the one list of namespaces it serves, in the order the docs show them."""

import json
from importlib.resources import files
from typing import Any

import click
from flask import Blueprint, Flask, current_app, jsonify, render_template, url_for
from flask_restx import Api

from app import health
from app.accounts import auth, mfa, recovery, sessions, users
from app.audit import routes as audit
from app.core.jsonio import output_json
from app.items import routes as items
from app.toolkit.declare import document
from app.toolkit.openapi import openapi_document

# One line per feature; a new resource adds its own. The order is Swagger UI's tag order.
NAMESPACES = [auth.ns, recovery.ns, mfa.ns, users.ns, sessions.ns, items.ns, audit.ns, health.ns]


class ProblemApi(Api):
    """A restx Api that leaves every error to the app's handlers in app/core/errors.py."""

    def handle_error(self, e: Exception) -> None:
        # restx would render its own {"message": ...} body; re-raising makes its error_router fall
        # back to Flask's handlers, which answer problem+json.
        raise e


api = ProblemApi(
    title="Flask API starter",
    version="1.0",
    description="JSON API with JWT auth. Log in with POST /auth/login; the UI then sends the token.",
    prefix="/api/v1",
    doc=False,  # Swagger UI 5 below: restx bundles Swagger UI 4, which cannot show OpenAPI 3.1
    authorizations={
        "Bearer": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An access token, with or without the `Bearer ` prefix.",
        }
    },
    security="Bearer",
)
api.representations["application/json"] = output_json  # type: ignore[attr-defined]
for namespace in NAMESPACES:
    api.add_namespace(namespace)
document(api)


# Swagger UI and the OpenAPI 3.1 document; the Swagger 2.0 one stays at /api/v1/swagger.json for older tools.
docs = Blueprint(
    "docs",
    __name__,
    static_folder=str(files("flask_swagger_ui") / "dist"),
    static_url_path="/swagger/ui",
)


@docs.get(f"{api.prefix}/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.1 document, written once per process from the declarations."""
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = openapi_document(api, current_app)
    return jsonify(current_app.extensions["openapi"])


@docs.get("/swagger")
def swagger_ui() -> str:
    """Swagger UI on the OpenAPI 3.1 document, with the login-to-authorise glue in static/swagger-auth.js."""
    return render_template(
        "swagger.html",
        title=current_app.config["APP_NAME"],
        spec_url=url_for("docs.openapi"),
        persist_auth=current_app.config["DOCS_PERSIST_AUTH"],
    )


@click.command("openapi")
def print_openapi() -> None:
    """Print the OpenAPI 3.1 document that /api/v1/openapi.json serves (make clients writes it to clients/)."""
    click.echo(json.dumps(openapi_document(api, current_app), indent=2))


def init_app(app: Flask) -> None:
    app.cli.add_command(print_openapi)
    api.init_app(app, add_specs=app.config["DOCS_ENABLED"], title=app.config["APP_NAME"])
    if app.config["DOCS_ENABLED"]:
        app.register_blueprint(docs)
