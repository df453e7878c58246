"""JSON out with orjson: response bodies (Flask's and restx's) and nothing else of their meaning changed.

orjson writes compact UTF-8 where json.dumps wrote ", " separators and \\u escapes; the values are the
same. Flask's own rules stay for what orjson would write differently: keys sorted as jsonify sorts them,
datetimes as Flask writes them (marshmallow has already made every field of ours a string). What orjson
refuses, a lone surrogate (a client's "\\ud800" echoed back in a 422's field names, say), goes to json.dumps,
which escapes it as before.
"""

import json
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Flask, Response, make_response
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider (jsonify, problem+json bodies), serializing with orjson."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # an indent or another json.dumps option orjson does not take
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj, default=self.default, option=_OPTIONS).decode()
        except TypeError:
            return super().dumps(obj)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = orjson.dumps(obj, default=self.default, option=_OPTIONS)
        except TypeError:
            body = super().dumps(obj).encode()
        response: Response = self._app.response_class(body + b"\n", mimetype=self.mimetype)  # type: ignore[arg-type,assignment]
        return response


def output_json(data: Any, code: int, headers: Mapping[str, str] | None = None) -> Response:
    """restx's representation of a handler's answer, as its own output_json but with orjson; the
    declarations answer with it directly, as restx would only look up this same representation."""
    try:
        body = orjson.dumps(data, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        body = json.dumps(data).encode()
    response = make_response(body + b"\n", code)
    response.headers.extend(headers or {})
    response.mimetype = "application/json"
    return response


def init_app(app: Flask) -> None:
    app.json = OrjsonProvider(app)
