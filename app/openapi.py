"""The Swagger side of the marshmallow schemas, and the Swagger UI page."""

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import render_template
from flask_restx.model import SchemaModel
from marshmallow import Schema

from app.extensions import api
from app.schemas import ProblemSchema

F = TypeVar("F", bound=Callable[..., Any])

_plugin = MarshmallowPlugin()
_spec = APISpec(title=api.title, version=api.version, openapi_version="2.0", plugins=[_plugin])


def model(schema: type[Schema]) -> SchemaModel:
    """Register a marshmallow schema (and those it nests) as a restx model, derived not rewritten."""
    name = schema.__name__.removesuffix("Schema")
    if name not in _spec.components.schemas:
        _spec.components.schema(name, schema=schema)
    for definition_name, definition in _spec.to_dict().get("definitions", {}).items():
        if definition_name not in api.models:
            api.schema_model(definition_name, definition)
    return api.models[name]


def query(schema: type[Schema]) -> dict[str, Any]:
    """The restx `params` documentation of a query-string schema."""
    params = _plugin.converter.schema2parameters(schema, location="query")  # type: ignore[union-attr]
    return {p.pop("name"): p for p in params}


def problems(*statuses: int, limited: bool = True) -> Callable[[F], F]:
    """Document the problem+json error responses an operation can give (429 too, unless exempt)."""
    problem_model = model(ProblemSchema)

    def decorate(func: F) -> F:
        for status in (*statuses, 429) if limited else statuses:
            func = api.response(status, HTTPStatus(status).phrase, problem_model)(func)
        return api.doc(produces=["application/json", "application/problem+json"])(func)

    return decorate


# Every operation that reads a body can get these from the HTTP layer alone.
BODY_ERRORS = (400, 413, 415, 422)


@api.documentation
def swagger_ui() -> str:
    """Swagger UI with the bundled assets, plus the login-to-authorise glue in static/swagger-auth.js."""
    return render_template("swagger.html", title=api.title, specs_url=api.specs_url)
