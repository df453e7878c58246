"""Logs: one line per event on stderr, JSON or text (LOG_FORMAT), each line of a request with its context.

The app writes the one access line per request (gunicorn's own access log is off, see gunicorn.conf.py),
and gunicorn's error log goes through the same handler and formatter, so every line has one shape.
"""

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from app.core import config
from app.core.errors import request_id
from app.toolkit import identity

# The fields of every line, in this order; null where one does not apply (outside a request, say).
FIELDS = ("level", "event", "logger", "method", "path", "status", "duration_ms", "user_id", "client_ip", "request_id")
RENAMED = {"levelname": "level", "message": "event", "name": "logger"}

access = logging.getLogger("app.access")
security = logging.getLogger("app.security")
# Security events an operator may alert on; the others are INFO.
ALARMING = {"login.failed", "refresh_token.reused", "access.forbidden"}


def utc_time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RequestContext(logging.Filter):
    """Stamp a record made while serving a request with what the request is and who sent it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            context = {
                "method": request.method,
                "path": request.path,  # never the query string: a token put there must not reach the logs
                "user_id": identity.verified_subject(),
                "client_ip": request.remote_addr,
                "request_id": request_id(),
            }
            for name, value in context.items():
                record.__dict__.setdefault(name, value)
        return True


class StderrHandler(logging.Handler):
    """One line per record on whatever sys.stderr is when it is written (pytest swaps it per test)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestContext())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


class JsonFormatter(OrjsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601) and FIELDS first, then what the event adds.
    Newlines in values stay escaped inside the line, so nobody can forge a line."""

    def __init__(self) -> None:
        fields = ("levelname", "message", "name", *FIELDS[3:])
        super().__init__(" ".join(f"%({name})s" for name in fields), rename_fields=RENAMED)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = utc_time(record)
        super().add_fields(log_data, record, message_dict)

    def jsonify_log_record(self, log_data: Any) -> str:
        # orjson escapes what JSON must (below U+0020); DEL, the C1 controls (a CSI can drive a terminal)
        # and the Unicode line breaks (str.splitlines splits on them) it writes as they are.
        try:
            line = str(super().jsonify_log_record(log_data))
        except TypeError:  # what orjson refuses (a lone surrogate from a request, say): json.dumps escapes it
            return json.dumps(log_data, default=str)
        return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", line) if _UNSAFE_IN_JSON.search(line) else line


# Control characters (newlines, carriage returns, terminal escapes) and Unicode line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSAFE_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def escaped(value: object) -> str:
    """The value as text with its control characters written out (\\n, \\x1b), so it stays on one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), str(value))


class TextFormatter(logging.Formatter):
    """For a person at a terminal: time, level, logger and event, then the fields that have a value.
    Control characters in them are escaped, so a value (a URL, say) cannot forge a line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {name: getattr(record, name, None) for name in FIELDS[3:]}
        skip = {*RESERVED_ATTRS, *fields, "message", "asctime"}
        fields.update({k: v for k, v in record.__dict__.items() if k not in skip and not k.startswith("_")})
        line = f"{utc_time(record)} {record.levelname:<7} {record.name}: {escaped(record.getMessage())}"
        line += "".join(f" {name}={escaped(value)}" for name, value in fields.items() if value is not None)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def formatter() -> logging.Formatter:
    """The formatter the settings ask for; gunicorn.conf.py uses it for gunicorn's own lines."""
    return make_formatter(config.load()["LOG_FORMAT"])


def configure(log_format: str) -> None:
    """Send every record, the libraries' too, through one handler on the root logger."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(make_formatter(log_format))
    # No line of ours prints the calling frame, thread or process, which logging would otherwise look up for
    # every record (the optimisations the logging HOWTO lists): a twentieth of a small request's time.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # The dev server's request line carries the query string (where a token may be) and repeats ours.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def security_event(event: str, **fields: Any) -> None:
    """Log a security event (logins, token reuse and revocation, role changes, 403s) as a line of its own."""
    security.log(logging.WARNING if event in ALARMING else logging.INFO, event, extra=fields)


def elapsed() -> float:
    """Seconds since this request started."""
    return time.perf_counter() - float(g.get("started", time.perf_counter()))


def _start_clock() -> None:
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    access.info("request", extra={"status": response.status_code, "duration_ms": round(elapsed() * 1000, 1)})
    return response


def init_app(app: Flask) -> None:
    """Configure logging and write one access line per request. Call it before the other extensions:
    its clock then starts first and its line is written last, with the final status."""
    configure(app.config["LOG_FORMAT"])
    app.before_request(_start_clock)
    app.after_request(_log_request)
