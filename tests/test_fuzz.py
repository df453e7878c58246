"""Schemathesis against the served spec: every check, every phase, as a user and as an admin.

`make fuzz` runs the same with many more examples (FUZZ_EXAMPLES)."""

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, make_user
from tests.live import migrated_app, serve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "20")
SEED = os.environ.get("FUZZ_SEED", "1")


@pytest.mark.parametrize("role", ["user", "admin"])
def test_schemathesis_finds_nothing(role: str, new_database: Callable[[str], str]) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per fuzzed request is noise
    with migrated_app(new_database("sqlite")) as app, serve(app) as base_url:
        account = make_user(app, role=role)
        login = app.test_client().post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        token = login.get_json()["access_token"]
        command = [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base_url}/api/v1/swagger.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            "--header",
            f"Authorization: Bearer {token}",
            "--no-color",
        ]  # fmt: skip  (the rest of the settings are in schemathesis.toml)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
