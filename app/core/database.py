"""Database types and settings shared by every feature's models."""

from datetime import UTC, datetime
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
