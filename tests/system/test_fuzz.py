"""Schemathesis against the served spec: every check, every phase, as a user and as an admin.

`make fuzz` runs the same with many more examples (FUZZ_EXAMPLES)."""

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import PASSWORD, ROOT, make_user
from tests.support.live import migrated_app, serve

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "20")
SEED = os.environ.get("FUZZ_SEED", "1")


def derived_config(spec: dict[str, Any]) -> str:
    """schemathesis.toml plus the rules that follow from the spec, so a new resource needs no line here:
    a list's cursor only ever comes from a previous page, so any other string is rightly a 422."""
    lists = [
        op["operationId"]
        for ops in spec["paths"].values()
        for name, op in ops.items()
        if name != "parameters" and any(p["name"] == "cursor" for p in op.get("parameters", []))
    ]
    assert lists, "no list found in the spec"
    rule = f"""
[[operations]]
include-operation-id = {json.dumps(lists)}
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "422", "429"]
"""
    return (ROOT / "schemathesis.toml").read_text() + rule


@pytest.mark.parametrize("role", ["user", "admin"])
def test_schemathesis_finds_nothing(role: str, new_database: Callable[[str], str], tmp_path: Path) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per fuzzed request is noise
    with migrated_app(new_database("sqlite")) as app, serve(app) as base_url:
        account = make_user(app, role=role)
        login = app.test_client().post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        token = login.get_json()["access_token"]
        config = tmp_path / "schemathesis.toml"
        config.write_text(derived_config(app.test_client().get("/api/v1/swagger.json").get_json()))
        command = [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(config),
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
