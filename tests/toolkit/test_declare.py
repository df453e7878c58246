"""The Swagger 2.0 document, kept for older tools: valid, complete, derived from the marshmallow schemas."""

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema
from openapi_spec_validator import validate

from app.accounts import schemas
from tests.support.app import operations

PUBLIC = {
    "/auth/register",
    "/auth/login",
    "/auth/refresh",
    "/auth/password-reset",
    "/auth/password-reset/confirm",
    "/auth/verify-email",
    "/health/live",
    "/health/ready",
}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/swagger.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.get_json()
    return result


def test_the_spec_is_valid_swagger(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["swagger"] == "2.0" and spec["basePath"] == "/api/v1"


def test_every_api_route_is_documented(app: Flask, spec: dict[str, Any]) -> None:
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint in ("specs", "docs.openapi"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in spec["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing


def test_every_operation_documents_its_errors_and_summary(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        name = f"{method.upper()} {path}"
        assert op.get("summary"), name
        responses = op["responses"]
        if path not in PUBLIC or path == "/auth/refresh":
            assert "401" in responses, name
        if any(p["in"] == "body" for p in op.get("parameters", [])):
            assert {"400", "413", "415", "422"} <= responses.keys(), name
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["schema"] == {"$ref": "#/definitions/Problem"}, name
        if path in PUBLIC and path != "/auth/refresh":
            assert op["security"] == [], name  # public operations say so


@pytest.mark.parametrize(
    ("definition", "schema"),
    [
        (name.removesuffix("Schema"), cls)
        for name, cls in vars(schemas).items()
        if isinstance(cls, type) and issubclass(cls, Schema) and cls.__module__ == schemas.__name__
        if not name.endswith("QuerySchema")
    ],
)
def test_definitions_are_the_marshmallow_schemas(spec: dict[str, Any], definition: str, schema: type[Schema]) -> None:
    # A schema only ever used for PATCH is documented as its partial form, where nothing is required.
    documented = spec["definitions"].get(definition) or spec["definitions"][definition + "Patch"]
    assert set(documented["properties"]) == set(schema().fields)
    assert documented["additionalProperties"] is False  # unknown fields are rejected, and the spec says so
    required = {name for name, field in schema().fields.items() if field.required}
    assert set(documented.get("required", [])) == required


def test_list_query_parameters_come_from_the_schema(spec: dict[str, Any]) -> None:
    params = {p["name"] for p in spec["paths"]["/users"]["get"]["parameters"] if p["in"] == "query"}
    assert params == set(schemas.UserListQuerySchema().fields)
