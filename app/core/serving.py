"""gunicorn workers whose own error answers are problem+json with the app's security headers."""

import json
import re
import secrets
import socket
from http import HTTPStatus
from typing import Any

from flask import Flask
from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from app.core.headers import API_CSP

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


class _Captured:
    """Stands in for the client socket while gunicorn writes its HTML page, to learn the status it chose."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def problem_bytes(status: int) -> bytes:
    """A whole HTTP/1.1 answer: problem+json, the app's security headers, and the connection closed."""
    phrase = HTTPStatus(status).phrase
    request_id = secrets.token_hex(16)
    # A fixed sentence per status: gunicorn's own message quotes the request, which the client chose.
    body = json.dumps(
        {
            "type": "about:blank",
            "title": phrase,
            "status": status,
            "detail": HTTPStatus(status).description,
            "code": re.sub(r"\W+", "_", phrase.lower()),
            "request_id": request_id,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "X-Frame-Options: DENY\r\n"
        "Cross-Origin-Resource-Policy: same-origin\r\n"
        f"Content-Security-Policy: {API_CSP}\r\n"
        "Cache-Control: no-store\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class ProblemErrors(Worker):
    """gunicorn still chooses the status and logs the error; only the body and headers it sends change."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Answer a request gunicorn could not parse (or a failure outside the app) as problem+json."""
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)
        match = _STATUS_LINE.match(captured.data)
        status = int(match.group(1)) if match else 500
        try:
            util.write_nonblock(client, problem_bytes(status))
        except Exception:  # the client may be gone already; gunicorn ignores this too
            self.log.debug("Failed to send error message.")


class ProblemSyncWorker(ProblemErrors, SyncWorker):
    """gunicorn's sync worker (one request at a time), answering its own errors as problem+json."""


class ProblemThreadWorker(ProblemErrors, ThreadWorker):
    """gunicorn's gthread worker (GUNICORN_THREADS > 1), answering its own errors as problem+json."""


class AppLogger(Logger):
    """gunicorn's logger, without its access log: the app writes the one access line (app/core/logs.py).
    gunicorn would otherwise build its access line's fields for every request before dropping the line."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Nothing: see the class."""


def warm(app: Flask) -> None:
    """Do once in the master, before the fork, what each worker's first requests would do for itself."""
    # Built at a worker's first requests, these write to the master's objects they hang on (the mappers,
    # the statements, the URL map), copying those pages into the worker: built before the fork, they are
    # shared instead (bench/README.md, 2026-12-07). No I/O.
    from sqlalchemy.orm import configure_mappers

    from app.accounts.users import user_list_query
    from app.core.extensions import db
    from app.toolkit.identity import CALLER_BY_TOKEN

    if app.extensions.get("sqlalchemy") is not db:
        return  # another app under this gunicorn.conf.py (the bench's bare Flask floor)
    configure_mappers()  # the ORM's relationships and attributes, as the first query would set them up
    app.url_map.update()  # the URL matcher, as the first request would build it
    with app.app_context():
        dialect = db.engine.dialect  # no connection: compiling needs the dialect, not the server
        for statement in (*CALLER_BY_TOKEN.values(), user_list_query({})):
            statement.compile(dialect=dialect)  # memoizes the statement's and its columns' derived attributes
