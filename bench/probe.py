"""Send single requests through the app in-process and record what each one asks of Postgres and Redis.

run.py turns on log_statement and auto_explain for the database while this runs (before any load),
so what is recorded are the statements and plans of the queries the app really sends. Arguments:
the server log, the Redis URL, and a JSON list of [label, method, path, body, who]. Prints JSON.
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app


def redis_calls(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, dict[str, Any]] = client.info("commandstats")  # type: ignore[assignment]  # sync client
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def server_log(log: Path, offset: int) -> tuple[list[str], list[str], int]:
    """The statements and the plans written to the server log since offset."""
    time.sleep(0.3)  # the server writes its log after answering
    text = log.read_text(errors="replace")
    statements: list[str] = []
    plans: list[str] = []
    current: list[str] | None = None  # a message's further lines are tab-indented
    for line in text[offset:].splitlines():
        if "LOG:  statement: " in line:
            statements.append(line.split("LOG:  statement: ", 1)[1] + "\n")
            current = statements
        elif "LOG:  duration:" in line and "plan:" in line:
            plans.append(line.split("LOG:  ", 1)[1] + "\n")  # "duration: 0.123 ms  plan:"
            current = plans
        elif line.startswith("\t") and current:
            current[-1] += line[1:] + "\n"
        else:
            current = None
    return statements, plans, len(text)


def main() -> None:
    log, redis_url, credentials, requests = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    client = create_app().test_client()
    tokens = {
        who: client.post("/api/v1/auth/login", json=body).get_json()["access_token"]
        for who, body in credentials.items()
    }
    # One authenticated request first: the caller lookup's pool connects on first use, and its
    # connection setup is not what a request costs.
    client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {next(iter(tokens.values()))}"})
    counter = redis.Redis.from_url(redis_url)
    offset = len(log.read_text(errors="replace"))
    result: dict[str, Any] = {}
    for label, method, path, body, who in json.loads(requests):
        before = redis_calls(counter)
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
        response = client.open(path, method=method, json=body, headers=headers)
        if response.status_code != 200:
            sys.exit(f"{label}: HTTP {response.status_code} {response.get_data(as_text=True)[:300]}")
        after = redis_calls(counter)
        statements, plans, offset = server_log(log, offset)
        commands = {name: n - before.get(name, 0) for name, n in after.items() if name != "info"}
        result[label] = {
            "path": path,
            "statements": statements,
            "plans": plans,
            "redis_commands": {name: n for name, n in commands.items() if n},
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
