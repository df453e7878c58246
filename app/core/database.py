"""Database types and settings shared by every feature's models."""

import select
import time
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Dialect, Index, event
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from app.core.extensions import Base, db

# db.Model is made at run time, so type checkers cannot see it as a class; it is a Base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked per connection. Known by its
    # class's module: importing sqlite3 to compare would cost every Postgres worker about 1 MiB.
    if type(dbapi_connection).__module__ == "sqlite3":
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def postgres_only(index: Index) -> Index:
    """Mark an index that only Postgres can have (GIN): DDL and autogenerate leave it out elsewhere."""
    index.info["postgres_only"] = True
    return index.ddl_if(dialect="postgresql")


def exists_on(obj: Any, dialect: str) -> bool:
    """Whether a schema object belongs on this kind of database (alembic's include_object test)."""
    return dialect == "postgresql" or not obj.info.get("postgres_only", False)


def _wait_within_deadline(connection: Any) -> None:
    """psycopg2's wait callback: wait for the server as libpq would, but no longer than the connection's
    deadline. libpq's own waits have none (statement_timeout runs on the server, and a frozen server or a
    black-holed network still lets the kernel accept and acknowledge), so a hung server would hold a sync
    worker until gunicorn killed it."""
    # No stubs for psycopg2 (types-psycopg2 would be a dependency for these few lines).
    import psycopg2  # type: ignore[import-untyped]
    from psycopg2 import extensions

    connected = connection.status in (extensions.STATUS_READY, extensions.STATUS_BEGIN, extensions.STATUS_PREPARED)
    seconds = getattr(connection, "wait_seconds" if connected else "connect_seconds", None)
    deadline = None if seconds is None else time.monotonic() + seconds
    waiting = select.poll()
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        if state not in (extensions.POLL_READ, extensions.POLL_WRITE):
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        waiting.register(connection.fileno(), select.POLLIN if state == extensions.POLL_READ else select.POLLOUT)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not waiting.poll(None if left is None else left * 1000):
            # Raising here makes psycopg2 close the connection, so the pool drops it.
            raise psycopg2.OperationalError(f"timeout: no answer from the database server within {seconds:g} s")


@cache
def deadline_connection(connect_seconds: float, wait_seconds: float) -> type:
    """A psycopg2 connection class whose waits for the server end after these many seconds (connecting,
    then each statement), with psycopg2's wait callback installed to enforce them."""
    from psycopg2 import extensions

    # Process-wide, but only connections of this class carry a deadline; any other waits as before.
    extensions.set_wait_callback(_wait_within_deadline)
    attributes = {"connect_seconds": connect_seconds, "wait_seconds": wait_seconds}
    return type("DeadlineConnection", (extensions.connection,), attributes)
