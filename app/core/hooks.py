"""Running an extension's request hooks only for the requests they can act on.

Flask runs every before/after/teardown hook for every request. Flask-Limiter's and flask-cors's each
cost up to a tenth of a small request, although most requests have nothing for them to do.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask

Hook = Callable[..., Any]


def only_when(app: Flask, belongs: Callable[[Hook], bool], applies: Callable[[], bool]) -> None:
    """Wrap the app's hooks that `belongs` picks so they run only while `applies()`; when skipped, an
    after_request hook passes its response on (the others' return values are not used)."""

    def guarded(hook: Hook) -> Hook:
        @wraps(hook)
        def run(*args: Any) -> Any:
            return hook(*args) if applies() else (args[0] if args else None)

        return run

    registries: list[dict[Any, list[Any]]] = [
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
    ]
    for registry in registries:
        for functions in registry.values():
            functions[:] = [guarded(hook) if belongs(hook) else hook for hook in functions]
