"""The OpenAPI 3.1 document: valid, complete enough for generated clients, and true to the answers."""

import re
import uuid
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from app import create_app
from tests.support.app import PASSWORD, Account, operations, settings

JSON, PROBLEM = "application/json", "application/problem+json"
# Absent on purpose in some answers: the field errors outside 409 and 422.
OPTIONAL_IN_ANSWERS = {"Problem": {"errors", "mfa_token"}}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == JSON
    result: dict[str, Any] = response.get_json()
    return result


def resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A $ref'd component (one level), or the item itself."""
    if "$ref" not in item:
        return item
    *_, kind, name = item["$ref"].split("/")
    found: dict[str, Any] = document["components"][kind][name]
    return found


def rebased(node: Any) -> Any:
    """A schema whose component $refs point into its own $defs, for a plain JSON Schema validator."""
    if isinstance(node, dict):
        return {k: rebased(v) if k != "$ref" else v.replace("components/schemas", "$defs") for k, v in node.items()}
    return [rebased(v) for v in node] if isinstance(node, list) else node


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_it_describes_the_same_operations_as_the_swagger_2_document(
    client: FlaskClient, document: dict[str, Any]
) -> None:
    swagger = client.get("/api/v1/swagger.json").get_json()
    old = {
        (swagger["basePath"] + path, method): op
        for path, ops in swagger["paths"].items()
        for method, op in ops.items()
        if method != "parameters"
    }
    new = {(path, method): op for path, method, op in operations(document)}
    assert old.keys() == new.keys()
    for key, op in new.items():
        # The same answers; the 3.1 document adds the 500 and 503 any operation can give.
        assert set(op["responses"]) - {"500", "503"} == set(old[key]["responses"]) - {"503"}, key
        assert op["summary"] == old[key]["summary"].rstrip("."), key


def test_every_operation_has_an_explicit_unique_id_a_summary_and_a_description(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", i) for i in ids), ids
    assert {"createUser", "listUsers", "getMe", "updateUser", "refreshTokens"} <= set(ids)
    for path, method, op in operations(document):
        assert op["summary"] and op["description"] and op["tags"], (method, path)


def test_every_operation_lists_every_status_it_can_answer(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        statuses = set(op["responses"])
        assert {"500", "503"} <= statuses, (method, path)
        if op["security"]:
            assert "401" in statuses, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= statuses, (method, path)
        if path != "/api/v1/health/live" and path != "/api/v1/health/ready":
            assert "429" in statuses, (method, path)


def test_success_is_json_and_errors_are_problems_with_their_headers(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        for status, answer in op["responses"].items():
            answer = resolve(document, answer)
            assert "X-Request-ID" in answer["headers"], (method, path, status)
            content = set(answer.get("content", {}))
            if status.startswith("2"):
                assert content <= {JSON}, (method, path, status)
            else:
                assert content == {PROBLEM}, (method, path, status)
            if status in ("429", "503"):
                assert "Retry-After" in answer["headers"], (method, path, status)
            for name, header in answer["headers"].items():
                # Sent on every such answer, so clients may rely on it; only Link is absent on a last page.
                assert resolve(document, header).get("required", False) is (name != "Link"), (method, path, name)
    users = document["paths"]["/api/v1/users"]
    assert {"Location", "ETag"} <= set(users["post"]["responses"]["201"]["headers"])
    assert "Link" in users["get"]["responses"]["200"]["headers"]
    patch = document["paths"]["/api/v1/users/me"]["patch"]
    assert any(p["in"] == "header" and p["name"] == "If-Match" for p in patch["parameters"])


def test_path_ids_are_uuids_with_an_example(document: dict[str, Any]) -> None:
    params = [p for path, _, op in operations(document) if "{" in path for p in op["parameters"] if p["in"] == "path"]
    assert params
    for param in params:
        assert param["required"] is True and param["schema"]["format"] == "uuid", param
        assert param["schema"]["examples"], param


def test_enums_are_named_components(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Role"] == {"type": "string", "enum": ["user", "admin"]}
    assert schemas["User"]["properties"]["role"] == {"$ref": "#/components/schemas/Role"}

    def inline_enums(node: Any, where: str) -> list[str]:
        if isinstance(node, dict):
            found = [where] if "enum" in node else []
            return found + [f for key, value in node.items() for f in inline_enums(value, f"{where}/{key}")]
        if isinstance(node, list):
            return [f for value in node for f in inline_enums(value, where)]
        return []

    # Only the enum components themselves hold values; every use is a $ref, so a client gets one type.
    enum_components = {name for name, schema in schemas.items() if "enum" in schema}
    found = inline_enums(document["paths"], "paths") + [
        f for name, schema in schemas.items() if name not in enum_components for f in inline_enums(schema, name)
    ]
    assert not found
    for name in enum_components:
        assert all(re.fullmatch(r"[A-Za-z]\w*(\.\w+)?", value) for value in schemas[name]["enum"]), name


def test_tokens_have_their_own_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["refreshToken"]["type"] == "http"
    refresh = document["paths"]["/api/v1/auth/refresh"]["post"]
    assert refresh["security"] == [{"refreshToken": []}]
    assert document["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    assert document["paths"]["/api/v1/users/me"]["get"]["security"] == [{"bearerAuth": []}]


def test_cookie_mode_is_documented_when_on(database_app: Flask) -> None:
    app = create_app(settings(DATABASE_URL=database_app.config["DATABASE_URL"], AUTH_COOKIES=True))
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert schemes["accessCookie"]["in"] == "cookie" and schemes["accessCsrf"]["name"] == "X-CSRF-TOKEN"
    paths = document["paths"]
    assert paths["/api/v1/users/me"]["get"]["security"] == [{"bearerAuth": []}, {"accessCookie": []}]
    assert paths["/api/v1/users/me"]["patch"]["security"][1] == {"accessCookie": [], "accessCsrf": []}
    assert paths["/api/v1/auth/refresh"]["post"]["security"][1] == {"refreshCookie": [], "refreshCsrf": []}
    # Login answers with cookies then, and its body carries no token.
    assert set(document["components"]["schemas"]["Token"]["required"]) == {"token_type", "expires_in"}


def test_answers_hold_every_field_the_document_requires(
    client: FlaskClient, document: dict[str, Any], user: Account, admin: Account
) -> None:
    schemas = document["components"]["schemas"]
    for name in ("User", "Session", "AuditEvent", "Problem", "Token", "LoginToken"):
        schema = schemas[name]
        assert set(schema["properties"]) - set(schema["required"]) == OPTIONAL_IN_ANSWERS.get(name, set()), name

    def check(response: Any, name: str) -> None:
        # The body must validate against its component, the other components beside it for its $refs.
        jsonschema.validate(response.get_json(), rebased({"$defs": schemas, **schemas[name]}))

    check(client.get("/api/v1/users/me", headers=user.headers), "User")
    check(client.get("/api/v1/users", headers=admin.headers), "UserPage")
    check(client.get("/api/v1/users/me/sessions", headers=user.headers), "SessionList")
    check(client.get("/api/v1/audit-events", headers=admin.headers), "AuditEventPage")
    logged_in = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    check(logged_in, "LoginToken")
    refresh = {"Authorization": f"Bearer {logged_in.get_json()['refresh_token']}"}
    check(client.post("/api/v1/auth/refresh", headers=refresh), "Token")  # a new pair, no device token
    check(client.get("/api/v1/users/me"), "Problem")
    check(client.patch("/api/v1/users/me", json={"email": "x"}, headers=user.headers), "Problem")


def test_documented_bodies_are_the_ones_validated(client: FlaskClient, document: dict[str, Any], admin: Any) -> None:
    """One declaration validates and documents: an empty body is refused for exactly the fields the
    document calls required, and a field it does not list is refused by name."""
    checked = 0
    for path, method, op in operations(document):
        if "requestBody" not in op:
            continue
        schema = resolve(document, op["requestBody"]["content"][JSON]["schema"])
        url = re.sub(r"\{user_id\}", admin.id, path)
        url = re.sub(r"\{\w+\}", str(uuid.uuid4()), url)
        send = getattr(client, method)
        empty = send(url, json={}, headers=admin.headers)
        required = set(schema.get("required", []))
        if required:
            assert empty.status_code == 422, (method, path)
            assert set(empty.get_json()["errors"]) == required, (method, path)
        unknown = send(url, json={"not_in_the_docs": 1}, headers=admin.headers)
        assert unknown.status_code == 422, (method, path)
        assert "not_in_the_docs" in unknown.get_json()["errors"], (method, path)
        checked += 1
    assert checked  # the accounts alone have several


def test_swagger_ui_shows_this_document_from_local_assets(client: FlaskClient) -> None:
    page = client.get("/swagger")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert any("swagger-ui-bundle.js" in a for a in assets) and any("swagger-auth.js" in a for a in assets)
    for asset in assets:
        with client.get(asset) as response:  # file responses must be closed
            assert response.status_code == 200, asset  # all local: the docs work offline
    assert "https://" not in html
    # Swagger UI 5: the first major version that renders OpenAPI 3.1.
    with client.get("/swagger/ui/swagger-ui-bundle.js") as bundle:
        assert b"isOAS31" in bundle.data


def test_a_patch_body_sends_no_defaults(document: dict[str, Any]) -> None:
    """A partial update leaves out what the client does not send; a default in the document would make a
    generated client send it, and overwrite the stored value."""
    patches = [name for name in document["components"]["schemas"] if name.endswith("Patch")]
    assert patches
    for name in patches:
        schema = document["components"]["schemas"][name]
        assert "required" not in schema, name
        assert not [prop for prop in schema["properties"].values() if "default" in prop], name
