"""Alembic environment, run by Flask-Migrate (`flask db ...`) inside the app."""

import logging
from typing import Any

from alembic import context
from flask import current_app
from sqlalchemy import text
from sqlalchemy.types import TypeDecorator

from app.core.database import exists_on

config = context.config
# Alembic's lines go through the app's log handler (app/logs.py), in the app's format; alembic.ini's
# logging section is not applied, as it would replace that handler.
logging.getLogger("alembic").setLevel(logging.INFO)
logger = logging.getLogger("alembic.env")
# Any fixed number: every migrator of this database takes the same Postgres advisory lock.
MIGRATION_LOCK = 7_146_502_013

# db.engine, not the generated db.get_engine(): that is deprecated in Flask-SQLAlchemy 3.1
# (a DeprecationWarning, fatal under -W error) and gone in 3.2.
db = current_app.extensions["migrate"].db
config.set_main_option("sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%"))


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write app-level TypeDecorators as their plain SQLAlchemy type, so migrations import nothing of the app."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    """Write no empty migration when autogenerate finds no change."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def include_object(obj: Any, _name: str | None, _type: str, _reflected: bool, _compare_to: Any) -> bool:
    """Leave Postgres-only indexes (GIN) out when autogenerate compares another database."""
    return exists_on(obj, db.engine.dialect.name)


def options() -> dict[str, Any]:
    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("render_item", render_item)
    conf_args.setdefault("include_object", include_object)
    conf_args.setdefault("compare_type", True)
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    conf_args.setdefault("render_as_batch", db.engine.dialect.name == "sqlite")
    return conf_args


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=db.metadata, literal_binds=True, **options()
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    with db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=db.metadata, **options())
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Migrations are a deploy step: the app's per-request limits (DB_STATEMENT_TIMEOUT,
                # DB_LOCK_TIMEOUT) would fail a long one, and a second migrator must wait its turn.
                connection.execute(text("SET LOCAL statement_timeout = 0"))
                connection.execute(text("SET LOCAL lock_timeout = 0"))
                # Nor the client-side wait bound (app/core/database.py): a long index build answers late.
                connection.connection.dbapi_connection.wait_seconds = None  # type: ignore[union-attr]
                # One migrator at a time: another `flask db upgrade` waits here, then finds the schema at
                # head and does nothing. Taken inside Alembic's transaction: a transaction opened before
                # configure() would make Alembic think it is someone else's and never commit it.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()
