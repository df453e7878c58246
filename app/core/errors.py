"""Every error response, from any layer, as one RFC 9457 application/problem+json body."""

import contextlib
import logging
import re
import secrets
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request
from marshmallow import Schema, ValidationError, fields
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.schema import ColumnCollectionConstraint
from werkzeug.exceptions import HTTPException

from app.core.extensions import db

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class ApiError(Exception):
    """An error a resource raises on purpose: a status, a stable code and a sentence."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: dict[str, Any] | None = None,
        extensions: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors
        self.extensions = extensions  # RFC 9457 extension members beside the standard ones
        self.retry_after = retry_after  # seconds, when a 503 knows better than the default


class ProblemSchema(Schema):
    """The body of every error answer (documentation only: problem() builds it)."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Unprocessable Content"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String(required=True)
    code = fields.String(
        required=True, metadata={"description": "Stable machine-readable error code.", "example": "validation_failed"}
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field name -> messages (422 and 409 only)."},
    )
    request_id = fields.String(required=True)
    mfa_token = fields.String(
        metadata={
            "description": "Only with code mfa_required (POST /auth/login): the challenge to send with a code "
            "to POST /auth/login/mfa; it works once, for MFA_CHALLENGE_MINUTES."
        }
    )


def taken(*fields: str) -> ApiError:
    """409: another row already holds these fields' values."""
    return ApiError(
        409, "conflict", "A resource with these values already exists.", {f: ["Already taken."] for f in fields}
    )


def request_id() -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one; fixed for the request."""
    if "request_id" not in g:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(16)
    return str(g.request_id)


def problem(
    status: int,
    code: str,
    detail: str | None = None,
    errors: dict[str, Any] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """Build the problem+json response; the only place an error body is made."""
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
        "code": code,
        "request_id": request_id(),
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        response.headers["Retry-After"] = "5"
    if status == HTTPStatus.FORBIDDEN:
        logging.getLogger("app.security").warning("access.forbidden", extra={"code": code})
    if status == HTTPStatus.UNAUTHORIZED:
        hint = ', error="invalid_token"' if code != "missing_token" else ""
        response.headers["WWW-Authenticate"] = f'Bearer realm="api"{hint}'
    return response


def _http_error(e: HTTPException) -> Response:
    status = e.code or 500
    response = problem(status, re.sub(r"\W+", "_", HTTPStatus(status).phrase.lower()), e.description)
    for name, value in e.get_headers():
        if name in ("Allow", "Retry-After"):  # e.g. the methods a 405 allows
            response.headers[name] = value
    return response


def _unique_violation_fields(e: IntegrityError) -> list[str] | None:
    """The columns of a violated unique constraint, or None if it was another integrity error."""
    orig = e.orig
    if getattr(orig, "pgcode", None) == "23505":  # Postgres names the constraint
        name = orig.diag.constraint_name  # type: ignore[union-attr]
        for table in db.metadata.tables.values():
            for constraint in table.constraints:
                if isinstance(constraint, ColumnCollectionConstraint) and constraint.name == name:
                    return [column.name for column in constraint.columns]
        return []
    match = re.match(r"UNIQUE constraint failed: (.+)", str(orig))  # SQLite names the columns
    if match:
        return [column.split(".")[-1] for column in match.group(1).split(", ")]
    return None


def _integrity_error(e: IntegrityError) -> Response:
    db.session.rollback()
    fields = _unique_violation_fields(e)
    if fields is None:
        return _unhandled(e)
    return _api_error(taken(*fields))


def _stale(_e: StaleDataError) -> Response:
    db.session.rollback()
    return problem(412, "precondition_failed", "Someone else changed this resource first; fetch it again.")


# Postgres' lock_not_available and query_canceled: a lock_timeout or statement_timeout ran out.
_TIMEOUT_PGCODES = {"55P03", "57014"}


def _database_problem(e: SQLAlchemyError) -> Response:
    """The database is unreachable, too slow or out of pooled connections: 503 and Retry-After, never a 500."""
    if isinstance(e, DBAPIError) and not isinstance(e, OperationalError) and not e.connection_invalidated:
        return _unhandled(e)  # a faulty query, not an outage
    with contextlib.suppress(SQLAlchemyError):  # a lost connection cannot roll back; the pool replaces it
        db.session.rollback()
    orig = getattr(e, "orig", None)
    if isinstance(e, PoolTimeoutError):
        code, detail = "database_busy", "Every database connection is in use; try again shortly."
    elif getattr(orig, "pgcode", None) in _TIMEOUT_PGCODES or "database is locked" in str(orig):
        code, detail = "database_timeout", "The database took too long to answer; try again shortly."
    else:
        code, detail = "database_unavailable", "The database cannot be reached; try again shortly."
    # The driver's own first line, never str(e): SQLAlchemy's adds the statement and its parameters.
    cause = str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() else type(e).__name__
    current_app.logger.warning("database.error", extra={"code": code, "cause": cause})
    return problem(503, code, detail)


def _api_error(e: ApiError) -> Response:
    response = problem(e.status, e.code, e.detail, e.errors, e.extensions)
    if e.retry_after is not None:
        response.headers["Retry-After"] = str(e.retry_after)
    return response


def _unhandled(e: Exception) -> Response:
    current_app.logger.exception("unhandled error (request_id=%s)", request_id(), exc_info=e)
    db.session.rollback()
    return problem(500, "internal_error", "The server failed; the request id identifies the log entry.")


def init_app(app: Flask) -> None:
    """Register the handlers on the app; restx defers to them (see app/api.py)."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(
        ValidationError,
        lambda e: problem(422, "validation_failed", "The request is not valid.", e.normalized_messages()),
    )
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(IntegrityError, _integrity_error)
    app.register_error_handler(StaleDataError, _stale)
    for error in (OperationalError, DBAPIError, PoolTimeoutError):
        app.register_error_handler(error, _database_problem)
    app.teardown_appcontext(_end_transaction)  # registered after db.init_app, so it runs before its teardown
    app.register_error_handler(Exception, _unhandled)
    app.after_request(_echo_request_id)


def _end_transaction(_exc: BaseException | None) -> None:
    """Close the session, quietly. Flask-SQLAlchemy's teardown closes it too, but when the database
    went away after the answer was made, the rollback inside raises, and gunicorn turns that answered
    request into a 500. A failed close here has invalidated the connection and left that teardown
    nothing to do. A request that never used the session (the caller lookup does not) has none to
    close, and asking for one would make one."""
    if db.session.registry.has():
        with contextlib.suppress(SQLAlchemyError):
            db.session.close()


def _echo_request_id(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id()
    return response
