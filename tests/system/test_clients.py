"""The generated clients in clients/: the checked-in OpenAPI document and both clients are what the app
and the pinned generators make now, each client type-checks strictly, and each walks a real session
against the app served over HTTP (clients/journey.py, clients/typescript/journey.ts)."""

import difflib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.app import PASSWORD, ROOT, make_user
from tests.support.live import migrated_app, serve

CLIENTS = ROOT / "clients"
TYPESCRIPT = CLIENTS / "typescript"
GENERATED = ["openapi.json", "python", "typescript/src/schema.d.ts"]
UNTRACKED = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}  # what running the client leaves
# What each journey prints, `operationId status` a step: the same for both clients.
STEPS = [
    *["register 201", "login 200", "getMe 200", "updateMe 200", "updateMe 412", "refreshTokens 200"],
    *["listMySessions 200", "logout 204", "getMe 401"],
    *["login 200", "listUsers 200", "listUsers 200", "createUser 201", "deleteUser 204", "getUser 404"],
    *["login 429", "login 200", "done"],
]


def run(*command: str | Path, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; fail the test with its output unless it exits 0."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


def files(path: Path) -> dict[str, Path]:
    """Every file under path (or path itself, a file), by its path relative to path."""
    if path.is_file():
        return {"": path}
    return {
        str(file.relative_to(path)): file
        for file in sorted(path.rglob("*"))
        if file.is_file() and not UNTRACKED & set(file.relative_to(path).parts) and file.suffix != ".pyc"
    }


def drift(checked_in: Path, made_now: Path, name: str) -> str:
    """A unified diff from the checked-in copy to what was made now; empty when they are the same."""
    ours, theirs = files(checked_in), files(made_now)
    lines: list[str] = []
    for relative in sorted(ours.keys() | theirs.keys()):
        label = f"{name}/{relative}".rstrip("/")
        before = ours[relative].read_text().splitlines(keepends=True) if relative in ours else []
        after = theirs[relative].read_text().splitlines(keepends=True) if relative in theirs else []
        lines += difflib.unified_diff(before, after, f"checked in: {label}", f"made now: {label}")
    return "".join(lines)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document and both clients as `make clients` makes them now, in a temporary folder. The script
    also installs clients/typescript's pinned packages (npm ci) when they are missing or out of date."""
    out = tmp_path_factory.mktemp("clients")
    run(ROOT / "scripts" / "generate-clients", out)
    return out


@pytest.mark.parametrize("name", GENERATED)
def test_the_checked_in_copy_is_what_make_clients_makes_now(regenerated: Path, name: str) -> None:
    difference = drift(CLIENTS / name, regenerated / name, name)
    if len(difference) > 20_000:
        difference = difference[:20_000] + "\n[... cut]"
    assert not difference, f"clients/{name} is out of date: run `make clients` and commit it.\n{difference}"


def test_spectral_finds_nothing_in_the_document(regenerated: Path) -> None:
    """Spectral's OpenAPI rules (clients/.spectral.yaml): no error, warning, info or hint."""
    spectral = TYPESCRIPT / "node_modules" / ".bin" / "spectral"
    run(spectral, "lint", CLIENTS / "openapi.json", "-r", CLIENTS / ".spectral.yaml", "--fail-severity=hint")


@pytest.fixture
def server(new_database: Callable[[str], str]) -> Iterator[tuple[str, str]]:
    """(the server's origin, an admin's email) for the app served over HTTP, with a plain user besides the
    admin, so that a page of one has a next, and a login limit a journey reaches in a few tries."""
    database_url = new_database("sqlite")
    with (
        migrated_app(database_url, TESTING=False, RATELIMIT_LOGIN_IP="5 per 2 seconds") as app,
        serve(app) as url,
    ):
        admin = make_user(app, role="admin", display_name="Admin")
        make_user(app)
        yield url, admin.email


def test_the_python_client_and_its_journey_type_check_strictly() -> None:
    run(sys.executable, "-m", "mypy", "--strict", "clients/journey.py", "clients/python/api_client")


def test_the_python_journey(server: tuple[str, str]) -> None:
    url, admin_email = server
    journey = run(sys.executable, CLIENTS / "journey.py", url, admin_email, PASSWORD, timeout=120)
    assert journey.stdout.splitlines() == STEPS


@pytest.fixture(scope="module")
def typescript(regenerated: Path) -> Path:
    """clients/typescript with its pinned packages installed (regenerating installed them)."""
    return TYPESCRIPT


def test_the_typescript_client_and_its_journey_type_check_strictly(typescript: Path) -> None:
    run(typescript / "node_modules" / ".bin" / "tsc", "--strict", "--noEmit", "-p", typescript)


def test_the_typescript_journey(typescript: Path, server: tuple[str, str]) -> None:
    url, admin_email = server
    run(typescript / "node_modules" / ".bin" / "tsc", "-p", typescript)  # into clients/typescript/dist
    journey = run("node", typescript / "dist" / "journey.js", url, admin_email, PASSWORD, timeout=120)
    assert journey.stdout.splitlines() == STEPS
