"""The API: the restx Api, and the one list of namespaces it serves, in the order the docs show them."""

from flask import Flask, render_template
from flask_restx import Api

from app import health
from app.accounts import auth, recovery, sessions, users
from app.audit import routes as audit
from app.items import routes as items
from app.toolkit.declare import document

# One line per feature; a new resource adds its own. The order is Swagger UI's tag order.
NAMESPACES = [auth.ns, recovery.ns, users.ns, sessions.ns, items.ns, audit.ns, health.ns]


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
    doc="/swagger",
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
for namespace in NAMESPACES:
    api.add_namespace(namespace)
document(api)


@api.documentation
def swagger_ui() -> str:
    """Swagger UI with the bundled assets, plus the login-to-authorise glue in static/swagger-auth.js."""
    return render_template("swagger.html", title=api.title, specs_url=api.specs_url)


def init_app(app: Flask) -> None:
    api.init_app(app, add_specs=app.config["DOCS_ENABLED"], title=app.config["APP_NAME"])
