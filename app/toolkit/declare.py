"""Declarations: each operation names its input, its answer and its errors once.

`@body`, `@query`, `@response` and `@errors` record what they declare on the handler; the same
record validates the input, serializes the answer and, through `document()`, writes the operation
into the API docs. So the docs cannot say one thing while the code does another.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from http import HTTPStatus
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Response, request
from flask_restx import Api
from flask_restx.utils import merge
from marshmallow import Schema
from werkzeug.exceptions import BadRequest

from app.core.errors import ProblemSchema
from app.core.jsonio import output_json

F = TypeVar("F", bound=Callable[..., Any])
SchemaArg = Schema | type[Schema]

# Every operation that reads a body can get these from the HTTP layer alone.
BODY_ERRORS = (400, 413, 415, 422)
METHODS = ("get", "post", "put", "patch", "delete")
ETAG_HEADER = {
    "ETag": {
        "description": "The version of this resource; send it back in If-Match to update it safely.",
        "type": "string",
    }
}
LOCATION_HEADER = {"Location": {"description": "The URL of the new resource.", "type": "string"}}
LINK_HEADER = {
    "Link": {"description": 'The next page, as <url>; rel="next" (absent on the last page).', "type": "string"}
}
IF_MATCH = "The ETag from your last read. A stale one gets 412; without it the update applies (or 428 if required)."


@dataclass
class Declaration:
    """What one operation takes and gives; the decorators below fill it in."""

    operation_id: str = ""
    body: Schema | None = None
    query: Schema | None = None
    response: Schema | None = None
    status: int = 200
    description: str = ""
    etag: bool = False
    errors: set[int] = field(default_factory=set)
    # Other successful answers, which a setting or the input may choose: status -> (schema, description).
    alternatives: dict[int, tuple[Schema | None, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """What a handler returns to give one of its alternative answers (@alternative) instead of its usual one."""

    status: int
    obj: Any = None


def declaration(func: Callable[..., Any]) -> Declaration:
    """The handler's declaration (an empty one if it declares nothing)."""
    found: Declaration = func.__dict__.setdefault("declaration", Declaration())
    return found


def _instance(schema: SchemaArg) -> Schema:
    # One instance per declaration: building a Schema costs more than loading or dumping one object.
    return schema() if isinstance(schema, type) else schema


def load_json(schema: Schema) -> dict[str, Any]:
    """Parse the JSON body with a schema: 415 if not JSON, 400 if malformed, 422 if invalid."""
    try:
        data = request.get_json()
    except BadRequest as e:
        raise BadRequest("The body is not valid JSON.") from e
    except RecursionError as e:  # json.loads on "[[[[..." overflows the stack
        raise BadRequest("The JSON body is nested too deeply.") from e
    result: dict[str, Any] = schema.load(data)
    return result


def load_query(schema: Schema) -> dict[str, Any]:
    """Parse the query string with a schema; 422 if invalid."""
    result: dict[str, Any] = schema.load(request.args.to_dict())
    return result


def _input(field: str, loader: Callable[[Schema], dict[str, Any]]) -> Callable[[SchemaArg], Callable[[F], F]]:
    """A declaration that loads an input with a schema and passes the result to the handler."""

    def declare(schema: SchemaArg) -> Callable[[F], F]:
        instance = _instance(schema)

        def decorate(func: F) -> F:
            @wraps(func)
            def wrapper(resource: Any, *args: Any, **kwargs: Any) -> Any:
                return func(resource, loader(instance), *args, **kwargs)

            setattr(declaration(wrapper), field, instance)
            return wrapper  # type: ignore[return-value]

        return decorate

    return declare


# @body(Schema): validate the JSON body with the schema and pass the loaded data to the handler.
body = _input("body", load_json)
# @query(Schema): parse the query string with the schema and pass the loaded arguments to the handler.
query = _input("query", load_query)


def response(
    schema: SchemaArg | None = None, status: int = 200, description: str = "", *, etag: bool = False
) -> Callable[[F], F]:
    """Serialize what the handler returns with the schema (no schema: an empty 204).

    The handler returns the object, or (object, headers). With etag, the answer carries the object's
    version as a strong ETag; a 201 carries the Location that created() adds.
    """
    instance = _instance(schema) if schema is not None else None

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            if isinstance(result, Response):  # the handler made the answer itself (cookies, say)
                return result
            if isinstance(result, Answer):
                schema = declaration(wrapper).alternatives[result.status][0]
                body = schema.dump(result.obj) if schema is not None else None
                return (
                    Response(status=result.status, mimetype="application/json")
                    if body is None
                    else output_json(body, result.status)
                )
            obj, headers = result if isinstance(result, tuple) else (result, {})
            if instance is None:
                return Response(status=status, headers=headers, mimetype="application/json")
            if etag:
                headers = {**headers, "ETag": etag_of(obj)}
            return output_json(instance.dump(obj), status, headers)

        declared = declaration(wrapper)
        declared.response, declared.status, declared.etag = instance, status, etag
        declared.description = description or HTTPStatus(status).phrase
        return wrapper  # type: ignore[return-value]

    return decorate


def alternative(schema: SchemaArg | None, status: int, description: str) -> Callable[[F], F]:
    """Declare another successful answer, which the handler gives by returning Answer(status, obj);
    @response serializes it with this schema and both document it."""
    instance = _instance(schema) if schema is not None else None

    def decorate(func: F) -> F:
        declaration(func).alternatives[status] = (instance, description)
        return func

    return decorate


def errors(*statuses: int) -> Callable[[F], F]:
    """Declare the problem+json answers an operation gives on purpose (404, 409, 412...).

    Those that follow from other declarations need not be named: 401 unless @public, 403 with
    @admin_only, 429 unless @exempt, 400/413/415/422 with @body and 422 with @query.
    """

    def decorate(func: F) -> F:
        declaration(func).errors.update(statuses)
        return func

    return decorate


def operation(operation_id: str) -> Callable[[F], F]:
    """Name the operation for clients: the method name a generated client gets (createUser, listItems)."""

    def decorate(func: F) -> F:
        declaration(func).operation_id = operation_id
        return func

    return decorate


def etag_of(obj: Any) -> str:
    """A strong ETag of the object's version (its version_id_col)."""
    return f'"{obj.version}"'


# --- documentation: the declarations, written into restx's Swagger 2.0 document ---------------

_plugin = MarshmallowPlugin()
_spec = APISpec(title="models", version="1", openapi_version="2.0", plugins=[_plugin])


def model(api: Api, schema: Schema) -> Any:
    """The schema (and those it nests) as restx models, derived not rewritten. A partial instance
    (for PATCH) is a model of its own, in which nothing is required."""
    name = type(schema).__name__.removesuffix("Schema") + ("Patch" if schema.partial is True else "")
    if name not in _spec.components.schemas:
        _spec.components.schema(name, schema=schema if schema.partial is True else type(schema))
    for definition_name, definition in _spec.to_dict().get("definitions", {}).items():
        if definition_name not in api.models:
            api.schema_model(definition_name, definition)
    return api.models[name]


def query_params(schema: Schema) -> dict[str, Any]:
    """The restx `params` documentation of a query-string schema."""
    params = _plugin.converter.schema2parameters(type(schema), location="query")  # type: ignore[union-attr]
    return {p.pop("name"): p for p in params}


def error_statuses(func: Callable[..., Any]) -> list[int]:
    """Every problem status the operation can answer: the declared ones and those that follow."""
    declared = declaration(func)
    statuses = set(declared.errors)
    if not getattr(func, "public", False):
        statuses.add(401)
    if getattr(func, "admin_only", False):
        statuses.add(403)
    if not getattr(func, "exempt", False):
        statuses.add(429)
    if declared.body is not None:
        statuses.update(BODY_ERRORS)
    if declared.query is not None:
        statuses.add(422)
    return sorted(statuses)


def success_headers(declared: Declaration) -> dict[str, Any]:
    headers = dict(ETAG_HEADER) if declared.etag else {}
    if declared.status == HTTPStatus.CREATED:
        headers.update(LOCATION_HEADER)
    if declared.query is not None and declared.response is not None and "next_cursor" in declared.response.fields:
        headers.update(LINK_HEADER)
    return headers


def operation_doc(api: Api, func: Callable[..., Any]) -> dict[str, Any]:
    """The restx documentation of one handler, from its declaration and markers."""
    declared = declaration(func)
    success_model = model(api, declared.response) if declared.response is not None else None
    responses: dict[str, Any] = {
        str(declared.status): (declared.description, success_model, {"headers": success_headers(declared)})
    }
    for status, (schema, description) in declared.alternatives.items():
        responses[str(status)] = (description, model(api, schema) if schema is not None else None, {})
    problem = model(api, ProblemSchema())
    for status in error_statuses(func):
        responses[str(status)] = (HTTPStatus(status).phrase, problem, {})
    doc: dict[str, Any] = {"responses": responses, "produces": ["application/json", "application/problem+json"]}
    params: dict[str, Any] = query_params(declared.query) if declared.query is not None else {}
    if 412 in declared.errors:
        params["If-Match"] = {"in": "header", "description": IF_MATCH, "type": "string"}
    if params:
        doc["params"] = params
    if declared.body is not None:
        doc["expect"] = [model(api, declared.body)]
    if getattr(func, "public", False):
        doc["security"] = []
    return doc


def document(api: Api) -> None:
    """Write every registered operation's declaration into the docs (once per process)."""
    for namespace in api.namespaces:
        for route in namespace.resources:
            for method in METHODS:
                func = getattr(route.resource, method, None)
                if func is None or func.__dict__.get("documented"):
                    continue
                func.__apidoc__ = merge(getattr(func, "__apidoc__", {}), operation_doc(api, func))
                func.documented = True
