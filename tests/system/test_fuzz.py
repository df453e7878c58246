"""Schemathesis against the served OpenAPI 3.1 document: every check, every phase, as a user and as an
admin, against the app under gunicorn (production settings, Redis-backed limits) and through nginx
in front of it, so answers made outside Flask are fuzzed too.

`make fuzz` runs the same with many more examples (FUZZ_EXAMPLES)."""

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from tests.support.app import DATABASES, PASSWORD, ROOT, make_user, settings
from tests.support.loopback import Gunicorn, Redis, gunicorn, migrate
from tests.support.stack import running, send, start_nginx, wait_for

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "20")
SEED = os.environ.get("FUZZ_SEED", "1")


def derived_config(spec: dict[str, Any]) -> str:
    """schemathesis.toml plus the rules that follow from the spec, so a new resource needs no line here:
    a list's cursor only ever comes from a previous page, so any other string is rightly a 422."""
    lists = [
        op["operationId"]
        for ops in spec["paths"].values()
        for name, op in ops.items()
        if any(p["name"] == "cursor" for p in op.get("parameters", []))
    ]
    assert lists, "no list found in the spec"
    rule = f"""
[[operations]]
include-operation-id = {json.dumps(lists)}
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "422", "429"]
"""
    return (ROOT / "schemathesis.toml").read_text() + rule


@contextmanager
def entry_port(server: Gunicorn, via: str, directory: Path) -> Iterator[int]:
    """The port a client calls: gunicorn's own, or nginx's (nginx.conf) in front of it."""
    if via == "gunicorn":
        yield server.port
        return
    command, port = start_nginx(directory / "nginx", server.port)
    log = directory / "nginx.log"
    with running(command, log) as process:
        wait_for(lambda: send(port, "GET", "/api/v1/health/live").status == 200, "nginx", process=process, log=log)
        yield port


@pytest.mark.parametrize("via", ["gunicorn", "nginx"])
@pytest.mark.parametrize("role", ["user", "admin"])
def test_schemathesis_finds_nothing(
    role: str, via: str, new_database: Callable[[str], str], redis: Redis, tmp_path: Path
) -> None:
    database = migrate(new_database("postgres" if "postgres" in DATABASES else "sqlite"))
    with (
        gunicorn(tmp_path / "app", database, RATELIMIT_STORAGE_URI=redis.url) as server,
        entry_port(server, via, tmp_path) as port,
    ):
        account = make_user(create_app(settings(DATABASE_URL=database)), role=role)
        login = server.request("POST", "/api/v1/auth/login", {"email": account.email, "password": PASSWORD})
        token = login.json()["access_token"]
        base_url = f"http://127.0.0.1:{port}"
        config = tmp_path / "schemathesis.toml"
        config.write_text(derived_config(server.request("GET", "/api/v1/openapi.json").json()))
        command = [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(config),
            "run",
            f"{base_url}/api/v1/openapi.json",
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
