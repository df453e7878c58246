"""Liveness and readiness."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.core.cli import MIGRATIONS, init_migrations
from app.core.extensions import db
from app.health import current_heads, migration_heads
from tests.support.app import ROOT, SECRET, assert_problem, settings
from tests.support.migrations import NEW_TABLE, migrations_copy, previous_revision
from tests.support.postgres import free_port


def test_live_and_ready_when_migrated(client: FlaskClient) -> None:
    assert client.get("/api/v1/health/live").get_json() == {"status": "ok"}
    assert client.get("/api/v1/health/ready").get_json() == {"status": "ready"}


def test_not_ready_before_migrations(new_database: Callable[[str], str]) -> None:
    client = create_app(settings(DATABASE_URL=new_database("sqlite"))).test_client()
    response = client.get("/api/v1/health/ready")
    assert_problem(response, 503, "schema_not_current")
    assert response.headers["Retry-After"]


def test_not_ready_without_a_database_but_still_live() -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    client = create_app(settings(DATABASE_URL=url)).test_client()
    assert client.get("/api/v1/health/live").status_code == 200
    assert_problem(client.get("/api/v1/health/ready"), 503, "database_unavailable")


def test_ready_when_a_later_release_has_migrated_the_database(
    new_database: Callable[[str], str], tmp_path: Path
) -> None:
    """A rolling deploy: the migration Job applies the new release's revision while this release's pods
    still serve; they stay ready, as the schema only grew."""
    app = create_app(settings(DATABASE_URL=new_database("sqlite")))
    directory, revision = migrations_copy(tmp_path, NEW_TABLE)
    init_migrations(app)
    with app.app_context():
        upgrade(directory=str(directory))
        with db.engine.connect() as connection:
            assert current_heads(connection) == {revision}
    assert app.test_client().get("/api/v1/health/ready").get_json() == {"status": "ready"}


def test_not_ready_when_the_database_is_behind_the_code(new_database: Callable[[str], str]) -> None:
    """A new pod whose migration has not run yet must not take traffic."""
    app = create_app(settings(DATABASE_URL=new_database("sqlite")))
    init_migrations(app)
    with app.app_context():
        upgrade(revision=previous_revision())
    assert_problem(app.test_client().get("/api/v1/health/ready"), 503, "schema_not_current")


def test_readiness_reads_the_heads_as_alembic_does(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        assert current_heads(connection) == set(MigrationContext.configure(connection).get_current_heads())
        assert current_heads(connection) == migration_heads() == set(ScriptDirectory(str(MIGRATIONS)).get_heads())


def test_a_worker_never_imports_alembic(new_database: Callable[[str], str]) -> None:
    """Alembic and Flask-Migrate cost a process 11 MiB: only `flask db` loads them, readiness does not."""
    app = create_app(settings(DATABASE_URL=new_database("sqlite")))
    init_migrations(app)
    with app.app_context():
        upgrade()
    # Not through tests.conftest, which imports Flask-Migrate itself.
    overrides = {"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET}
    script = (
        "import sys; from app import create_app; "
        f"client = create_app({overrides!r}).test_client(); "
        "assert client.get('/api/v1/health/ready').status_code == 200; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'flask_migrate')))"
    )
    ran = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]", ran.stdout


def test_probes_answer_head_like_get(client: FlaskClient, new_database: Callable[[str], str]) -> None:
    """Load balancers probe with HEAD: the status of GET, no body, and no token asked for."""
    for path in ("/api/v1/health/live", "/api/v1/health/ready"):
        response = client.head(path)
        assert (response.status_code, response.get_data()) == (200, b""), path
    unmigrated = create_app(settings(DATABASE_URL=new_database("sqlite"))).test_client()
    response = unmigrated.head("/api/v1/health/ready")
    assert (response.status_code, response.get_data()) == (503, b"")
