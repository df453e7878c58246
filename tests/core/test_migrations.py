"""Committed migrations build the schema, match the models, and go down and up again."""

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select

from app import create_app
from app.accounts.models import User
from app.core.cli import init_migrations
from app.core.database import exists_on, utcnow
from app.core.extensions import db
from tests.support.app import DATABASES, ROOT, settings
from tests.support.postgres import Cluster


def test_models_and_migrations_agree(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        dialect = connection.dialect.name
        opts = {"compare_type": True, "include_object": lambda obj, *_: exists_on(obj, dialect)}
        diff = compare_metadata(MigrationContext.configure(connection, opts=opts), db.metadata)
    assert diff == []


def test_postgres_only_indexes_are_compared_on_postgres(app: Flask) -> None:
    """The include_object filter hides the trigram indexes from SQLite only; Postgres must have them."""
    with app.app_context():
        names = {index["name"] for index in inspect(db.engine).get_indexes("users")}
        trigram = {"ix_users_email_trgm", "ix_users_display_name_trgm"}
        assert trigram <= names if db.engine.dialect.name == "postgresql" else not trigram & names


@pytest.mark.parametrize("kind", DATABASES)
def test_downgrade_to_base_and_upgrade_again(kind: str, new_database: Callable[[str], str]) -> None:
    app = create_app(settings(DATABASE_URL=new_database(kind)))
    init_migrations(app)
    with app.app_context():
        tables = {*db.metadata.tables, "alembic_version"}  # every feature's tables, whichever are installed
        upgrade()
        assert set(inspect(db.engine).get_table_names()) == tables
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        upgrade()
        assert set(inspect(db.engine).get_table_names()) == tables
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


@pytest.mark.skipif("postgres" not in DATABASES, reason="Postgres is not among TEST_DATABASES")
def test_a_database_owner_without_superuser_can_migrate(postgres: Cluster | None) -> None:
    """What a managed Postgres gives the app: a role that owns its database. pg_trgm is trusted, so that is enough."""
    if postgres is None:
        pytest.skip("needs the throwaway cluster, to create a role (TEST_DATABASE_URL is set)")
    name = f"owner_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(postgres.url("postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        cursor.execute(f"CREATE DATABASE {name} OWNER {name}")
    admin.close()
    app = create_app(settings(DATABASE_URL=f"postgresql://{name}@127.0.0.1:{postgres.port}/{name}"))
    init_migrations(app)
    with app.app_context():
        upgrade()
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("users")}
        db.engine.dispose()
    assert {"ix_users_email_trgm", "ix_users_display_name_trgm"} <= indexes


@pytest.mark.parametrize("kind", DATABASES)
def test_stored_emails_are_folded_to_one_form_unless_two_accounts_collide(
    kind: str, new_database: Callable[[str], str]
) -> None:
    """Addresses stored before the normal form: rewritten to it, but two accounts that fold to one
    address are both left for a person to sort out, never merged or dropped."""
    app = create_app(settings(DATABASE_URL=new_database(kind)))
    init_migrations(app)
    users = User.__table__
    stored = {
        "ada@bücher.example": "ada@xn--bcher-kva.example",
        "\uff42\uff4f\uff42@example.com": "bob@example.com",
        "eve@bücher.example": "eve@bücher.example",  # collides with the next: both kept
        "eve@xn--bcher-kva.example": "eve@xn--bcher-kva.example",
    }
    with app.app_context():
        upgrade(revision="5c3e9a7d2f10")
        with db.engine.begin() as connection:
            for email in stored:
                connection.execute(
                    users.insert().values(
                        id=uuid.uuid4(),
                        email=email,
                        pending_email="new@BÜCHER.example",
                        display_name="x",
                        password_hash="x",
                        role="user",
                        is_active=True,
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
        upgrade()
        with db.engine.connect() as connection:
            rows = {
                row.email: row.pending_email for row in connection.execute(select(users.c.email, users.c.pending_email))
            }
        db.engine.dispose()
    assert set(rows) == set(stored.values())
    assert rows["ada@xn--bcher-kva.example"] == "new@xn--bcher-kva.example"
