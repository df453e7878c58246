"""`flask new-resource` in a copy of the project: the new resource migrates and its tests pass.
Deleting the example (its folder, registry line, migration and tests) leaves the rest green too."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.app import ROOT

SECRET = "scaffold-test-secret-" + "0123456789abcdef" * 3


def copy_project(target: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    for name in listed.stdout.splitlines():
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(project: Path, *command: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{project / 'dev.db'}",
        "SECRET_KEY": SECRET,
        "JWT_SECRET_KEY": SECRET,
        "TEST_DATABASES": "sqlite",
        "PYTHONPATH": str(project),
    }
    env.pop("COV_CORE_SOURCE", None)
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return result.stdout


def test_new_resource_migrates_and_its_tests_pass(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    run(project, "flask", "--app", "wsgi", "new-resource", "notes")
    assert "notes.ns" in (project / "app" / "api.py").read_text()
    run(project, "flask", "--app", "wsgi", "db", "upgrade")
    run(project, "flask", "--app", "wsgi", "db", "migrate", "-m", "add notes")
    migrations = list((project / "migrations" / "versions").glob("*_add_notes.py"))
    assert len(migrations) == 1 and "create_table('notes'" in migrations[0].read_text()
    # The new operations join the OpenAPI document with ids of their own (listNotes, createNote...).
    tests = ["tests/notes", "tests/items", "tests/core/test_migrations.py", "tests/toolkit/test_openapi.py"]
    output = run(project, "pytest", "-q", "-p", "no:cacheprovider", *tests)
    assert " passed" in output and "failed" not in output


def test_deleting_the_example_leaves_the_rest_green(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    shutil.rmtree(project / "app" / "items")
    shutil.rmtree(project / "tests" / "items")
    for migration in (project / "migrations" / "versions").glob("*_items_the_worked_example_resource.py"):
        migration.unlink()
    api = project / "app" / "api.py"
    api.write_text(api.read_text().replace("from app.items import routes as items\n", "").replace("items.ns, ", ""))
    output = run(project, "pytest", "-q", "-p", "no:cacheprovider", "-m", "not system", "-x")
    assert " passed" in output and "failed" not in output
