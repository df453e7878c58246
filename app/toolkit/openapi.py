"""The OpenAPI 3.1 document, written from the same declarations that validate and serialize.

Served at /api/v1/openapi.json for client generators and Swagger UI. Every operation lists every
status it can answer (the declared ones, those that follow from its markers, and 500 and 503), the
headers it sends, and has an explicit operationId, so generated clients get typed answers.
"""

import re
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from flask_restx import Api
from marshmallow import Schema, fields

from app.core.errors import ProblemSchema
from app.toolkit.declare import IF_MATCH, METHODS, Declaration, declaration, error_statuses
from app.toolkit.schemas import Choice

# Every operation can answer these: an unexpected error, and a database or hashing pool that is busy.
ALWAYS = (500, 503)
RETRY_AFTER = {"$ref": "#/components/headers/Retry-After"}
REQUEST_ID = {"$ref": "#/components/headers/X-Request-ID"}
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id (yours, if you sent a sane X-Request-ID); logs and problems carry it.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "ETag": {
        "description": "The version of this resource; send it back in If-Match to update it safely.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The path of the new resource.",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Link": {
        "description": 'The next page, as <url>; rel="next" (absent on the last page).',
        "schema": {"type": "string"},
    },
}
# When a problem answer means what, in words a client developer acts on.
PROBLEMS = {
    400: "The body is not valid JSON.",
    401: "No valid token: missing, expired, revoked, or of the wrong kind.",
    403: "Authenticated, but not allowed to do this.",
    404: "No such resource, or not yours to see.",
    409: "Conflicts with existing data (a taken email, say).",
    412: "If-Match does not match the current ETag: someone changed it since you read it.",
    413: "The body is too large.",
    415: "The body is not application/json.",
    422: "The input is not valid; `errors` says which fields and why.",
    428: "This server requires If-Match on updates (REQUIRE_IF_MATCH).",
    429: "Too many requests; wait Retry-After seconds.",
    500: "An unexpected error; quote request_id when reporting it.",
    503: "A dependency is unavailable or busy (database, password hashing); wait Retry-After seconds.",
}
_RULE_PARAM = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_PATH_PARAM_SCHEMAS = {
    "uuid": {"type": "string", "format": "uuid", "examples": ["6b1f2c1e-4a5d-4c1a-9f0e-2d3c4b5a6f70"]},
    "int": {"type": "integer"},
}


def problem_name(status: int) -> str:
    """The component name of a problem answer: its reason phrase in CamelCase (NotFound, ...)."""
    return "".join(word.capitalize() for word in re.split(r"[\s-]+", HTTPStatus(status).phrase))


def _named_enum(spec: APISpec) -> Callable[..., dict[str, Any]]:
    """A converter hook (bound to the converter): a Choice field becomes a $ref to its named enum."""

    def field2enum(_converter: Any, field: fields.Field[Any], ret: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if not isinstance(field, Choice):
            return {}
        if field.enum_name not in spec.components.schemas:
            spec.components.schema(field.enum_name, {"type": "string", "enum": list(field.choices)})
        ret.pop("type"), ret.pop("enum")  # the component says both
        return {"$ref": f"#/components/schemas/{field.enum_name}"}

    return field2enum


class Document:
    """One OpenAPI 3.1 document being written: the spec, and how schemas are named in it."""

    def __init__(self, api: Api, app: Flask) -> None:
        self.api, self.app = api, app
        self.plugin = MarshmallowPlugin(schema_name_resolver=self.schema_name)
        self.spec = APISpec(
            title=app.config["APP_NAME"],
            version=api.version,
            openapi_version="3.1.0",
            plugins=[self.plugin],
            info={"description": api.description},
            # Paths carry the API prefix, so a client's base URL is just the server's origin.
            servers=[{"url": "/", "description": "This server"}],
            tags=[{"name": ns.name, "description": ns.description} for ns in api.namespaces if ns.resources],
        )
        self.plugin.converter.add_attribute_function(_named_enum(self.spec))  # type: ignore[union-attr]

    @staticmethod
    def schema_name(schema: Any) -> str:
        """UserSchema -> User; a partial one (for PATCH, nothing required) -> UserPatch."""
        cls = schema if isinstance(schema, type) else type(schema)
        partial = not isinstance(schema, type) and schema.partial is True
        return cls.__name__.removesuffix("Schema") + ("Patch" if partial else "")

    def ref(self, schema: Schema) -> dict[str, str]:
        """A $ref to the schema's component, added on first use."""
        name = self.schema_name(schema)
        if name not in self.spec.components.schemas:
            self.spec.components.schema(name, schema=schema if schema.partial is True else type(schema))
            component = self.spec.components.schemas[name]
            if schema.partial is True:
                # A partial load fills in no defaults: a client must not send them for fields it leaves alone.
                for prop in component["properties"].values():
                    prop.pop("default", None)
            # A field an answer leaves out under some setting (the tokens in cookie mode) is required only
            # while that setting is off.
            for field_name, field in schema.fields.items():
                if self.app.config.get(field.metadata.get("omitted_if", "")) and field_name in component["required"]:
                    component["required"].remove(field_name)
        return {"$ref": f"#/components/schemas/{name}"}

    def components(self) -> None:
        """The parts operations refer to: headers, problem answers and security schemes."""
        for name, header in HEADERS.items():
            self.spec.components.header(name, header)
        problem = self.ref(ProblemSchema())
        for status, meaning in PROBLEMS.items():
            headers: dict[str, Any] = {"X-Request-ID": REQUEST_ID}
            if status in (429, 503):
                headers["Retry-After"] = RETRY_AFTER
            if status == 401:
                headers["WWW-Authenticate"] = {
                    "description": "The Bearer challenge.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            self.spec.components.response(
                problem_name(status),
                {
                    "description": meaning,
                    "headers": headers,
                    "content": {"application/problem+json": {"schema": problem}},
                },
            )
        self.spec.components.security_scheme(
            "bearerAuth",
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "The access_token from POST /auth/login or /auth/refresh.",
            },
        )
        self.spec.components.security_scheme(
            "refreshToken",
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "The refresh_token, sent to POST /auth/refresh only; each one works once.",
            },
        )
        if self.app.config["AUTH_COOKIES"]:
            config = self.app.config
            for kind in ("access", "refresh"):
                self.spec.components.security_scheme(
                    f"{kind}Cookie",
                    {
                        "type": "apiKey",
                        "in": "cookie",
                        "name": config[f"JWT_{kind.upper()}_COOKIE_NAME"],
                        "description": f"Cookie mode: the HttpOnly {kind} token cookie login sets.",
                    },
                )
                csrf_cookie = f"JWT_{kind.upper()}_CSRF_COOKIE_NAME"
                self.spec.components.security_scheme(
                    f"{kind}Csrf",
                    {
                        "type": "apiKey",
                        "in": "header",
                        "name": config[f"JWT_{kind.upper()}_CSRF_HEADER_NAME"],
                        "description": f"Cookie mode: repeat the readable {config[csrf_cookie]} cookie here "
                        "on every request that changes something.",
                    },
                )

    def security(self, func: Callable[..., Any], method: str) -> list[dict[str, list[str]]]:
        kind = getattr(func, "authenticates_with", None) or ("" if getattr(func, "public", False) else "access")
        if not kind:
            return []
        requirements: list[dict[str, list[str]]] = [{"bearerAuth" if kind == "access" else "refreshToken": []}]
        if self.app.config["AUTH_COOKIES"]:
            cookie: dict[str, list[str]] = {f"{kind}Cookie": []}
            if method.upper() in self.app.config["JWT_CSRF_METHODS"]:
                cookie[f"{kind}Csrf"] = []
            requirements.append(cookie)
        return requirements

    def operation(self, func: Callable[..., Any], method: str, path_params: list[dict[str, Any]]) -> dict[str, Any]:
        declared = declaration(func)
        if not declared.operation_id:
            raise LookupError(f"{func.__qualname__} declares no operation id: add @operation('verbNoun')")
        summary, _, rest = (func.__doc__ or "").strip().partition("\n")
        operation: dict[str, Any] = {
            "operationId": declared.operation_id,
            "summary": summary.rstrip("."),
            "description": " ".join(rest.split())
            or getattr(func, "__apidoc__", {}).get("description")
            or self.describe(func, declared),
            "security": self.security(func, method),
            "responses": self.responses(func, declared),
        }
        parameters = list(path_params)
        if declared.query is not None:
            parameters += self.plugin.converter.schema2parameters(type(declared.query), location="query")  # type: ignore[union-attr]
        if 412 in declared.errors:
            parameters.append(
                {"in": "header", "name": "If-Match", "description": IF_MATCH, "schema": {"type": "string"}}
            )
        if parameters:
            operation["parameters"] = parameters
        if declared.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.ref(declared.body)}},
            }
        return operation

    @staticmethod
    def describe(func: Callable[..., Any], declared: Declaration) -> str:
        """What a client must know beyond the summary, read off the declaration."""
        if getattr(func, "authenticates_with", None) == "refresh":
            who = "Authenticates with a refresh token."
        elif getattr(func, "public", False):
            who = "Needs no token."
        else:
            who = "Needs an access token" + (" of an admin." if getattr(func, "admin_only", False) else ".")
        notes = [who, f"Answers {declared.status} ({declared.description})."]
        notes += [f"Or {status} ({description})." for status, (_, description) in declared.alternatives.items()]
        if 412 in declared.errors:
            notes.append("Send If-Match with the ETag of your last read: a stale one gets 412, so no change is lost.")
        if declared.query is not None and declared.response is not None and "next_cursor" in declared.response.fields:
            notes.append("Pass next_cursor as cursor for the next page; the Link header holds its URL.")
        return " ".join(notes)

    def responses(self, func: Callable[..., Any], declared: Declaration) -> dict[str, Any]:
        headers: dict[str, Any] = {"X-Request-ID": REQUEST_ID}
        if declared.etag:
            headers["ETag"] = {"$ref": "#/components/headers/ETag"}
        if declared.status == HTTPStatus.CREATED:
            headers["Location"] = {"$ref": "#/components/headers/Location"}
        if declared.response is not None and "next_cursor" in declared.response.fields:
            headers["Link"] = {"$ref": "#/components/headers/Link"}
        success: dict[str, Any] = {"description": declared.description, "headers": headers}
        if declared.response is not None:
            success["content"] = {"application/json": {"schema": self.ref(declared.response)}}
        answers = {str(declared.status): success}
        for status, (schema, description) in declared.alternatives.items():
            answers[str(status)] = {"description": description, "headers": {"X-Request-ID": REQUEST_ID}}
            if schema is not None:
                answers[str(status)]["content"] = {"application/json": {"schema": self.ref(schema)}}
        for status in sorted({*error_statuses(func), *ALWAYS}):
            answers[str(status)] = {"$ref": f"#/components/responses/{problem_name(status)}"}
        return answers

    def routes(self) -> Iterator[tuple[str, list[dict[str, Any]], Any, str]]:
        """(OpenAPI path, its path parameters, resource class, tag) for every route, in the docs' order."""
        for namespace in self.api.namespaces:
            for route in namespace.resources:
                params_doc = getattr(route.resource, "__apidoc__", {}).get("params", {})
                for url in route.urls:
                    rule = f"{self.api.prefix}{namespace.path}{url}".rstrip("/") or "/"
                    params = [
                        {
                            "in": "path",
                            "name": m["name"],
                            "required": True,
                            "description": params_doc.get(m["name"], {}).get("description", m["name"]),
                            "schema": _PATH_PARAM_SCHEMAS.get(m["converter"] or "", {"type": "string"}),
                        }
                        for m in _RULE_PARAM.finditer(rule)
                    ]
                    yield _RULE_PARAM.sub(r"{\g<name>}", rule), params, route.resource, namespace.name

    def build(self) -> dict[str, Any]:
        self.components()
        for path, params, resource, tag in self.routes():
            operations = {
                method: {"tags": [tag], **self.operation(getattr(resource, method), method, params)}
                for method in METHODS
                if getattr(resource, method, None) is not None
            }
            self.spec.path(path=path, operations=operations)
        return self.spec.to_dict()


def openapi_document(api: Api, app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation the Api serves."""
    return Document(api, app).build()
