"""Committed migrations build the schema, match the models, and go down and up again."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from app.cli import init_migrations
from app.extensions import db
from tests.conftest import DATABASES, settings

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"users", "refresh_sessions", "revoked_tokens", "account_tokens", "audit_events", "alembic_version"}


def test_models_and_migrations_agree(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata)
    assert diff == []


@pytest.mark.parametrize("kind", DATABASES)
def test_downgrade_to_base_and_upgrade_again(kind: str, new_database: Callable[[str], str]) -> None:
    app = create_app(settings(DATABASE_URL=new_database(kind)))
    init_migrations(app)
    with app.app_context():
        upgrade()
        assert set(inspect(db.engine).get_table_names()) == TABLES
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        upgrade()
        assert set(inspect(db.engine).get_table_names()) == TABLES
        db.engine.dispose()


def test_flask_db_commands_run_warning_free(tmp_path: Path) -> None:
    """The real CLI with every warning fatal: env.py must not call the deprecated get_engine()."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SECRET_KEY": "", "JWT_SECRET_KEY": ""}
    env.pop("FLASK_APP", None)
    for command in (["upgrade"], ["check"], ["downgrade", "base"], ["upgrade"]):
        result = subprocess.run(
            [sys.executable, "-W", "error", "-m", "flask", "db", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    assert (
        "No new upgrade operations detected"
        in subprocess.run(
            [sys.executable, "-m", "flask", "db", "check"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
