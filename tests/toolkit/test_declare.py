"""The served Swagger spec: valid, complete, derived from the marshmallow schemas."""

import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema
from openapi_spec_validator import validate

from app.accounts import schemas

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
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "specs":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in spec["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method != "parameters"
    ]


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


def test_swagger_ui_is_served_with_bundled_assets(client: FlaskClient) -> None:
    page = client.get("/swagger")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'data-spec-url="/api/v1/swagger.json"' in html
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert any("swagger-ui-bundle.js" in a for a in assets) and any("swagger-auth.js" in a for a in assets)
    for asset in assets:
        with client.get(asset) as response:  # file responses must be closed
            assert response.status_code == 200, asset  # all local: the docs work offline
    assert "https://" not in html


def test_documented_bodies_are_the_ones_validated(client: FlaskClient, spec: dict[str, Any], admin: Any) -> None:
    """One declaration validates and documents: an empty body is refused for exactly the fields the
    docs call required, and a field the docs do not list is refused by name."""
    checked = 0
    for path, method, op in operations(spec):
        bodies = [p for p in op.get("parameters", []) if p["in"] == "body"]
        if not bodies:
            continue
        definition = spec["definitions"][bodies[0]["schema"]["$ref"].rsplit("/", 1)[1]]
        url = "/api/v1" + path.replace("{user_id}", admin.id).replace("{item_id}", str(uuid.uuid4()))
        send = getattr(client, method)
        empty = send(url, json={}, headers=admin.headers)
        required = set(definition.get("required", []))
        if required:
            assert empty.status_code == 422, (method, path)
            assert set(empty.get_json()["errors"]) == required, (method, path)
        unknown = send(url, json={"not_in_the_docs": 1}, headers=admin.headers)
        assert unknown.status_code == 422, (method, path)
        assert "not_in_the_docs" in unknown.get_json()["errors"], (method, path)
        checked += 1
    assert checked  # the accounts alone have several
