"""Developer commands: `flask db` (Flask-Migrate) and `flask new-resource`."""

from pathlib import Path

import click
from flask import Flask

from app.core.extensions import db
from app.core.scaffold import new_resource

MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "migrations"


def init_migrations(app: Flask) -> None:
    """Register Flask-Migrate: `flask db` and flask_migrate.upgrade() need it."""
    from flask_migrate import Migrate  # here: it imports alembic, 11 MiB that no gunicorn worker needs

    Migrate(app, db, directory=str(MIGRATIONS))


def init_app(app: Flask) -> None:
    app.cli.add_command(new_resource)
    # Only the flask command builds the app inside a click command; a gunicorn worker never does.
    if click.get_current_context(silent=True) is not None:
        init_migrations(app)
