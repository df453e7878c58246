"""Extension singletons, bound to an app only inside create_app."""

from typing import Any

from flask import has_request_context, request
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

READ_METHODS = {"GET", "HEAD"}


class Base(DeclarativeBase):
    # Deterministic constraint names keep migrations reviewable and let errors.py
    # map a unique violation back to its column on every database.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def reading() -> bool:
    """Whether this is a GET or HEAD request, which only reads."""
    return has_request_context() and request.method in READ_METHODS


class RequestSession(Session):
    """A GET or HEAD request reads on the autocommit pool (core/config.py): no BEGIN, ROLLBACK or ping
    round trips around its queries. Every other request, and work outside one, gets a transaction."""

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any) -> Any:
        if bind is None and reading():
            return self._db.engines["reads"]
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)

    def flush(self, objects: Any = None) -> None:
        # In autocommit each statement would commit on its own: half a change could be kept.
        if reading() and (self.new or self.deleted or self.dirty):
            raise RuntimeError("GET and HEAD requests must not write: put the change behind POST, PATCH or DELETE")
        super().flush(objects)


db = SQLAlchemy(model_class=Base, session_options={"class_": RequestSession})
jwt = JWTManager()
cors = CORS()
