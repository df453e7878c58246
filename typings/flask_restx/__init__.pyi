# Types for the part of flask-restx this project uses (restx ships none), so mypy stays strict.
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask
from flask_restx.model import SchemaModel

_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C", bound=type)

class Resource:
    def __init__(self, api: Any = ..., *args: Any, **kwargs: Any) -> None: ...
    def dispatch_request(self, *args: Any, **kwargs: Any) -> Any: ...

class ResourceRoute:
    resource: type[Resource]
    urls: tuple[str, ...]

class Namespace:
    name: str
    description: str | None
    path: str
    resources: list[ResourceRoute]
    def __init__(self, name: str, description: str | None = ..., path: str | None = ..., **kwargs: Any) -> None: ...
    def route(self, *urls: str, **kwargs: Any) -> Callable[[_C], _C]: ...
    def doc(self, shortcut: Any = ..., **kwargs: Any) -> Callable[[_F], _F]: ...
    def expect(self, *inputs: Any, **kwargs: Any) -> Callable[[_F], _F]: ...
    def response(self, code: int, description: str, model: Any = ..., **kwargs: Any) -> Callable[[_F], _F]: ...
    def param(self, name: str, description: str | None = ..., _in: str = ..., **kwargs: Any) -> Callable[[_F], _F]: ...

class Api:
    title: str
    version: str
    description: str | None
    prefix: str
    models: dict[str, SchemaModel]
    namespaces: list[Namespace]
    @property
    def specs_url(self) -> str: ...
    def __init__(
        self,
        app: Flask | None = ...,
        version: str = ...,
        title: str | None = ...,
        description: str | None = ...,
        prefix: str = ...,
        doc: str | bool = ...,
        authorizations: dict[str, Any] | None = ...,
        security: Any = ...,
        tags: Iterable[Any] | None = ...,
        **kwargs: Any,
    ) -> None: ...
    def init_app(self, app: Flask, **kwargs: Any) -> None: ...
    def add_namespace(self, ns: Namespace, path: str | None = ...) -> None: ...
    def namespace(
        self, name: str, description: str | None = ..., path: str | None = ..., **kwargs: Any
    ) -> Namespace: ...
    def schema_model(self, name: str, schema: dict[str, Any]) -> SchemaModel: ...
    def response(self, code: int, description: str, model: Any = ..., **kwargs: Any) -> Callable[[_F], _F]: ...
    def doc(self, shortcut: Any = ..., **kwargs: Any) -> Callable[[_F], _F]: ...
    def documentation(self, func: _F) -> _F: ...
    def handle_error(self, e: Exception) -> Any: ...
