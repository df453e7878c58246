"""`make bench`: the app against a bare Flask floor, on a throwaway Postgres, under gunicorn and wrk.

Everything listens on free loopback ports and every process started here is stopped by its PID at
the end, also on failure. Settings (environment):
  BENCH_QUICK=1     a short smoke run (2 rounds of 2 s, 100,000 users)
  BENCH_ROUNDS      interleaved rounds (default 6)
  BENCH_SECONDS     seconds of load per case and round (default 3)
  BENCH_USERS       users in the large data set (default 1,000,000)
  BENCH_OUT         raw results file (default bench/results/latest.json)
  GUNICORN_*        passed on to the app's gunicorn.conf.py (GUNICORN_MAX_REQUESTS=1000 for an A/B, say)
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.accounts.models import User  # noqa: E402
from app.core.config import SETTINGS  # noqa: E402
from app.core.hashing import hasher  # noqa: E402
from app.toolkit.pagination import encode_cursor  # noqa: E402
from tests.support.postgres import Cluster, find_bindir, free_port  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2" if QUICK else "6"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "2" if QUICK else "3"))
USERS = int(os.environ.get("BENCH_USERS", "100000" if QUICK else "1000000"))
SMALL_USERS = 1000
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "bench" / "results" / "latest.json"))
CONNECTIONS = 16
FLOOD_LEAD_SECONDS = 1.5  # how long the login flood runs before /me beside it is measured
VENV_BIN = Path(sys.executable).parent
PASSWORD = "bench password, long enough for the policy"  # noqa: S105
ADMIN, MEMBER = "admin@bench.test", "member@bench.test"
TICKS = os.sysconf("SC_CLK_TCK")

SEED_SQL = """
INSERT INTO users (id, email, display_name, password_hash, role, is_active, created_at, updated_at)
SELECT gen_random_uuid(), 'user' || n || '@example.com', 'User ' || n, %(hash)s, 'user', n %% 50 <> 0,
       timestamptz '2025-01-01 00:00:00+00' + n * interval '1 second',
       timestamptz '2025-01-01 00:00:00+00' + n * interval '1 second'
FROM generate_series(1, %(users)s) AS n;
INSERT INTO users (id, email, display_name, password_hash, role, is_active, created_at, updated_at)
VALUES (gen_random_uuid(), %(admin)s, 'Admin', %(hash)s, 'admin', true, now(), now()),
       (gen_random_uuid(), %(member)s, 'Member', %(hash)s, 'user', true, now(), now());
"""

# Every statement and its plan, logged for sessions that start while the probe runs (the app's own
# connection options would override PGOPTIONS, so these are set on the database).
PROBE_SETTINGS = {
    "log_statement": "all",
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
}

started: list[subprocess.Popen[bytes]] = []


# --- processes ---------------------------------------------------------------------------------


def proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (field 3 onwards)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(proc_stat(int(entry.name))[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # exited while we looked
    return kids


def cpu_seconds(pids: list[int]) -> float:
    """User + system time of the processes and of their reaped children."""
    ticks = 0
    for pid in pids:
        try:
            utime, stime, cutime, cstime = (int(v) for v in proc_stat(pid)[11:15])
        except OSError:
            continue
        ticks += utime + stime + cutime + cstime
    return ticks / TICKS


def peak_rss_mib(pid: int) -> float:
    return status_mib(pid, "VmHWM")


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_mib(pid: int) -> dict[str, float]:
    """RSS, PSS (shared pages split between the processes sharing them) and USS (private) of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) / 1024
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields["Private_Clean"] + fields["Private_Dirty"],
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    started.append(proc)
    return proc


def stop_all() -> None:
    """Stop what we started, newest first, by PID: SIGTERM, then SIGKILL after a grace period."""
    for proc in reversed(started):
        if proc.poll() is not None:
            continue
        workers = children(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid in workers:  # a gunicorn worker orphaned by a killed master
            try:
                if int(proc_stat(pid)[1]) in (proc.pid, 1):
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# --- the servers -------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workers: list[int] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        # A dead worker's time moves to the master's reaped-children time; a new one is looked up afresh.
        return [self.proc.pid, *self.live_workers()]

    def peak_rss_per_worker_mib(self) -> float:
        return max(peak_rss_mib(pid) for pid in self.live_workers())

    def live_workers(self) -> list[int]:
        """The workers now (a recycled worker has a new PID)."""
        self.workers = children(self.proc.pid)
        return self.workers

    def memory(self) -> dict[str, float]:
        """The instance (master + workers): RSS and PSS summed; a worker's USS is what one more would add."""
        master, workers = memory_mib(self.proc.pid), [memory_mib(pid) for pid in self.live_workers()]
        return {
            "workers": len(workers),
            "instance_rss": master["rss"] + sum(w["rss"] for w in workers),
            "instance_pss": master["pss"] + sum(w["pss"] for w in workers),
            "master_pss": master["pss"],
            "worker_rss": max(w["rss"] for w in workers),
            "worker_pss": max(w["pss"] for w in workers),
            "worker_uss": max(w["uss"] for w in workers),
        }


def base_env() -> dict[str, str]:
    # MALLOC_MMAP_THRESHOLD_ as the Dockerfile sets it (the comment there says why), for the floor too.
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
        "LANG": "C.UTF-8",
        "MALLOC_MMAP_THRESHOLD_": "131072",
    }


def app_env(database_url: str, redis_url: str) -> dict[str, str]:
    """Every setting explicit (so a local .env changes nothing), production mode, strong fresh secrets."""
    env = {name: s.default for name, s in SETTINGS.items()}
    env.update(base_env())
    for name in SETTINGS:
        if name.startswith("RATELIMIT_") and name != "RATELIMIT_STORAGE_URI":
            # One client hammering with one token would only measure 429s; this keeps the
            # counting (a Redis round trip) and takes the limits out of the way.
            env[name] = "1000000 per minute"
    env.update(
        {
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": database_url,
            "RATELIMIT_STORAGE_URI": redis_url,
            "JWT_ACCESS_TOKEN_MINUTES": "120",  # outlives the run
            "MAIL_BACKEND": "memory",  # production refuses console; the run reads no mail
            "PUBLIC_URL": "http://127.0.0.1",  # production needs one; the run follows no links
            "WEB_CONCURRENCY": "2",  # two sync workers for the floor and the app; HASH_CONCURRENCY=0 leaves one free
        }
    )
    # gunicorn.conf.py's own defaults unless the run asks for others (an A/B of worker recycling, say).
    env.update({name: value for name, value in os.environ.items() if name.startswith("GUNICORN_")})
    return env


def serve(name: str, target: str, env: dict[str, str], ready_path: str, logs: Path) -> Server:
    port = free_port()
    # The shipped gunicorn.conf.py, as a deployment runs it (worker recycling, the access log, metrics files),
    # for the floor too: both differ only in the app they serve.
    args = [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", target]
    (logs / f"{name}-metrics").mkdir()
    env = {
        **env,
        "WEB_CONCURRENCY": "2",
        "HASH_SLOTS_DIR": str(logs / f"{name}-hash-slots"),
        "PROMETHEUS_MULTIPROC_DIR": str(logs / f"{name}-metrics"),
    }
    server = Server(name, start(args, env, logs / f"{name}.log"), port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{name} exited: see {logs / name}.log\n{(logs / f'{name}.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(server.base + ready_path, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"{name} did not become ready")
    server.live_workers()
    return server


def post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = json.load(response)
        return result


def login(server: Server, email: str) -> str:
    return str(post_json(server.base + "/api/v1/auth/login", {"email": email, "password": PASSWORD})["access_token"])


# --- the database ------------------------------------------------------------------------------


def prepare_database(cluster: Cluster, name: str, users: int, redis_url: str, logs: Path) -> str:
    """Create, migrate (`flask db upgrade`) and seed a database; return its URL."""
    url = cluster.create_database(name)
    env = app_env(url, redis_url)
    migrate = [str(VENV_BIN / "flask"), "--app", "wsgi:app", "db", "upgrade"]
    with (logs / f"migrate-{name}.log").open("wb") as out:
        subprocess.run(migrate, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)  # noqa: S603
    t0 = time.monotonic()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        params = {"hash": hasher.hash(PASSWORD), "users": users, "admin": ADMIN, "member": MEMBER}
        cur.execute(SEED_SQL, params)
    conn.close()
    vacuum = psycopg2.connect(url)
    vacuum.autocommit = True
    with vacuum.cursor() as cur:
        cur.execute("VACUUM ANALYZE")  # visibility map and statistics, as on a settled production table
    vacuum.close()
    print(f"  seeded {users:,} users into {name} in {time.monotonic() - t0:.1f} s", flush=True)
    return url


def deep_cursor(url: str, sort: str = "created_at", where: str = "TRUE") -> str:
    """The app's own cursor for the row 90% into a sort order (default: created_at, id; "-email" is by email,
    descending) of the rows `where` keeps."""
    direction = "DESC" if sort.startswith("-") else "ASC"
    column = {"created_at": "created_at", "email": "email"}[sort.lstrip("-")]
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM users WHERE {where}")  # noqa: S608
        (rows,) = cur.fetchone()
        cur.execute(
            f"SELECT id, email, created_at FROM users WHERE {where} "  # noqa: S608
            f"ORDER BY {column} {direction}, id {direction} OFFSET %s LIMIT 1",
            (rows * 9 // 10,),
        )
        user_id, email, created_at = cur.fetchone()
    conn.close()
    return encode_cursor(sort, User(id=uuid.UUID(str(user_id)), email=email, created_at=created_at))


# Each list filter, and the same rows in SQL (for the deep cursors). The bench's users are 'user<n>@example.com',
# 'User <n>', 2% inactive, and one admin. strpos() is a substring match without LIKE's wildcards.
LIST_FILTERS: list[tuple[dict[str, str], str]] = [
    ({}, "TRUE"),
    ({"role": "admin"}, "role = 'admin'"),
    ({"is_active": "false"}, "NOT is_active"),
    ({"email": "user4242"}, "strpos(email, 'user4242') > 0"),
    ({"name": "User 4242"}, "strpos(lower(display_name), 'user 4242') > 0"),
]
SORTS = [(sort, order) for sort in ("created_at", "email") for order in ("asc", "desc")]


def list_probes(url: str) -> list[list[Any]]:
    """GET /users with every filter and every sort the schema allows, on the first page and 90% deep."""
    probes: list[list[Any]] = []
    for params, where in LIST_FILTERS:
        for sort, order in SORTS:
            label = ", ".join([*(f"{name}={value}" for name, value in params.items()), f"sort={sort} {order}"])
            first = {**params, "sort": sort, "order": order}
            deep = {**first, "cursor": deep_cursor(url, ("-" if order == "desc" else "") + sort, where)}
            probes.append([f"{label}, first page", "GET", f"/api/v1/users?{urlencode(first)}", None, "admin"])
            probes.append([f"{label}, deep page", "GET", f"/api/v1/users?{urlencode(deep)}", None, "admin"])
    return probes


@dataclass
class Redis:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(logs: Path) -> Redis:
    """A throwaway Redis for the rate-limit counters: loopback, no persistence."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis = Redis(start(args, base_env(), logs / "redis.log"), port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return redis
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("redis-server did not start")


def postgres_pids(cluster: Cluster) -> list[int]:
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return [postmaster, *children(postmaster)]


def set_database(url: str, settings: dict[str, str] | None) -> None:
    """Set (or, with None, reset) defaults for new sessions of the database behind url."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    name = url.rsplit("/", 1)[1]
    with conn.cursor() as cur:
        if settings is None:
            cur.execute(f"ALTER DATABASE {name} RESET ALL")
        for setting, value in (settings or {}).items():
            cur.execute(f"ALTER DATABASE {name} SET {setting} = %s", (value,))
    conn.close()


def probe(
    cluster: Cluster, env: dict[str, str], redis: Redis, requests: list[list[Any]], logs: Path
) -> dict[str, dict[str, Any]]:
    """Statements, plans and Redis commands of single requests (bench/probe.py), before any load."""
    credentials = {who: {"email": email, "password": PASSWORD} for who, email in (("admin", ADMIN), ("member", MEMBER))}
    args = [sys.executable, "bench/probe.py", str(cluster.dir / "log"), redis.url, json.dumps(credentials)]
    set_database(env["DATABASE_URL"], PROBE_SETTINGS)
    try:
        with (logs / "probe.log").open("wb") as err:
            out = subprocess.run(  # noqa: S603
                [*args, json.dumps(requests)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, check=True
            )
    finally:
        set_database(env["DATABASE_URL"], None)
    result: dict[str, dict[str, Any]] = json.loads(out.stdout)
    if not any(seen["statements"] for seen in result.values()):
        raise RuntimeError(f"no statements were logged for the probe: see {cluster.dir / 'log'}")
    return result


def list_plans(seen: dict[str, Any]) -> list[str]:
    """The plans of the users list query among what one request sent."""
    return [plan for plan in seen["plans"] if "FROM users" in plan and "ORDER BY" in plan]


def plan_summary(plan: str) -> str:
    """One line: the query's time, the buffers its top node touched, and its scan and sort nodes."""
    duration = re.search(r"duration: ([\d.]+) ms", plan)
    buffers = re.search(r"Buffers: (.*)", plan)
    nodes = [
        line.strip().removeprefix("->").strip().split("  (")[0]
        for line in plan.splitlines()
        if re.search(r"Scan|Sort  \(", line)
    ]
    ms = float(duration.group(1)) if duration else float("nan")
    return f"{ms:9.2f} ms  {buffers.group(1) if buffers else '':<28} {' / '.join(nodes)}"


def print_probe(found: dict[str, dict[str, Any]], users: str, matrix: list[str]) -> None:
    print(f"\nWhat one request asks of Postgres and Redis ({users} users; log_statement and auto_explain):")
    for label, seen in found.items():
        if label in matrix:
            continue
        statements = [" ".join(s.split())[:60] for s in seen["statements"]]
        print(f"\n{label}: GET {seen['path'][:80]}" if label != "login" else "\nlogin: POST /api/v1/auth/login")
        print(f"  Postgres, {len(statements)} statements: " + " | ".join(statements))
        print(f"  Redis, {sum(seen['redis_commands'].values())} commands: {seen['redis_commands']}")
        for plan in list_plans(seen):
            print("".join("    " + line + "\n" for line in plan.splitlines()), end="")
    print(f"\nGET /users, every filter x sort, first page and 90% deep ({users} users; time as auto_explain saw it):")
    for label in matrix:
        for plan in list_plans(found[label]):
            print(f"  {label:<45}{plan_summary(plan)}")
    counting = [label for label, seen in found.items() if any("count(" in s.lower() for s in seen["statements"])]
    print(f"\nRequests that ran a COUNT: {', '.join(counting) or 'none'}")


# --- load --------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    server: str
    path: str
    method: str = "GET"
    body: str = ""
    token: str = ""
    connections: int = CONNECTIONS
    hashes: bool = False  # may be refused with 503 hashing_busy: counted apart, not as errors


def wrk_args(case: Case, base: str, seconds: int) -> tuple[list[str], dict[str, str]]:
    args = ["wrk", "-t1", f"-c{case.connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    env = {"PATH": os.environ["PATH"], "WRK_METHOD": case.method, "WRK_BODY": case.body, "WRK_TOKEN": case.token}
    if case.hashes:
        env["WRK_BUSY_STATUS"] = "503"
    return [*args, "-s", str(ROOT / "bench" / "wrk.lua"), base + case.path], env


def parse_wrk(output: str) -> dict[str, Any]:
    """wrk's result; rps counts the answers that did the work, busy_rps the 503s that refused to."""
    try:
        result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    except (IndexError, ValueError) as e:
        raise RuntimeError(f"wrk printed no result:\n{output}") from e
    seconds = result["duration_us"] / 1e6
    result["status_errors"] -= result["busy"]
    result["rps"] = (result["requests"] - result["busy"]) / seconds
    result["busy_rps"] = result["busy"] / seconds
    return result


def cpu_now(server: Server, cluster: Cluster, redis: Redis) -> dict[str, float]:
    # Postgres's processes are listed afresh: backends come and go (their time moves to the postmaster).
    return {
        "app": cpu_seconds(server.pids()),
        "pg": cpu_seconds(postgres_pids(cluster)),
        "redis": cpu_seconds([redis.proc.pid]),
    }


def settle(servers: list[Server], timeout: float = 30) -> None:
    """Wait until no server is still working off the previous case.

    wrk stops at its deadline, but requests already queued in a sync server's listen backlog are
    still served (logins at ~30 ms each), and that work would land in the next case's numbers.
    """
    pids = [pid for server in servers for pid in server.pids()]
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = cpu_seconds(pids)
        if now - before < 0.03:  # a tenth of a core: idle
            return
        before = now


def run_case(
    case: Case, servers: dict[str, Server], cluster: Cluster, redis: Redis, seconds: int, flood: Case | None
) -> dict[str, Any]:
    """Load one case for a while; measure throughput, latency, CPU per request (app, Postgres, Redis), RSS."""
    server = servers[case.server]
    settle(list(servers.values()))
    args, env = wrk_args(case, server.base, seconds)
    background = None
    if flood:  # a login flood running for the whole measurement, started first
        flood_args, flood_env = wrk_args(flood, server.base, seconds + 3)
        background = subprocess.Popen(flood_args, env=flood_env, stdout=subprocess.PIPE, text=True)  # noqa: S603
        started.append(background)  # type: ignore[arg-type]
        # Long enough for the flood to be established: its first half second to a second of contention
        # counts as a burst (logins wait for the slot); /me is measured beside what comes after.
        time.sleep(FLOOD_LEAD_SECONDS)
    cpu0 = cpu_now(server, cluster, redis)
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True)  # noqa: S603
    cpu1 = cpu_now(server, cluster, redis)
    result = parse_wrk(out.stdout)
    if background:
        flood_out, _ = background.communicate(timeout=seconds + 60)
        result["flood"] = parse_wrk(flood_out)
    done = max(result["requests"] - result["busy"], 1)  # a refusal's CPU is charged to the logins that succeeded
    for part in cpu0:
        # With a flood beside it, the CPU is shared by two kinds of request: not a per-request figure.
        result[f"{part}_cpu_ms"] = None if flood else (cpu1[part] - cpu0[part]) * 1000 / done
    result["peak_rss_mib"] = server.peak_rss_per_worker_mib()
    if result["status_errors"]:  # a wrong answer means a broken setup, not a slow one
        raise RuntimeError(f"{case.name}: {result['status_errors']} non-2xx answers: {result}")
    # Starved (no request finished, or some timed out or could not connect): a result, not a crash.
    result["errors"] = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    if result["requests"] == 0:  # every request waited at least the whole round
        result.update(p50_us=result["duration_us"], p99_us=result["duration_us"])
    return result


# --- report ------------------------------------------------------------------------------------


def median(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def paired(rounds: list[dict[str, dict[str, Any]]], case: str, base: str, key: str) -> float:
    """Median over rounds of case/base, each ratio taken within one round."""
    return median([r[case][key] / r[base][key] for r in rounds if r[case][key] and r[base][key]])


def fmt(value: float, width: int, decimals: int) -> str:
    return f"{'-':>{width}}" if value != value else f"{value:>{width}.{decimals}f}"  # NaN: not measured


def table(rounds: list[dict[str, dict[str, Any]]], cases: list[Case], servers: dict[str, Server]) -> str:
    head = (
        f"{'case':<26}{'req/s':>8}{'xfloor':>8}{'p50 ms':>8}{'p99 ms':>8}{'p99 x':>7}"
        f"{'CPU ms/req':>11}{'x':>6}{'PG ms/req':>10}{'Redis ms':>9}{'RSS MiB':>9}{'errors':>7}"
    )
    lines = [head, "-" * len(head)]
    for case in cases:
        m = {
            k: median([r[case.name][k] for r in rounds])
            for k in ("rps", "p50_us", "p99_us", "app_cpu_ms", "pg_cpu_ms", "redis_cpu_ms")
        }
        lines.append(
            f"{case.name:<26}{fmt(m['rps'], 8, 0)}{fmt(paired(rounds, case.name, 'floor', 'rps'), 8, 2)}"
            f"{fmt(m['p50_us'] / 1000, 8, 2)}{fmt(m['p99_us'] / 1000, 8, 2)}"
            f"{fmt(paired(rounds, case.name, 'floor', 'p99_us'), 7, 2)}"
            f"{fmt(m['app_cpu_ms'], 11, 3)}{fmt(paired(rounds, case.name, 'floor', 'app_cpu_ms'), 6, 2)}"
            f"{fmt(m['pg_cpu_ms'], 10, 3)}{fmt(m['redis_cpu_ms'], 9, 3)}"
            f"{fmt(rounds[-1][case.name]['peak_rss_mib'], 9, 1)}{sum(r[case.name]['errors'] for r in rounds):>7}"
        )
    return "\n".join(lines)


def targets(rounds: list[dict[str, dict[str, Any]]], memory: dict[str, float], large: str, small: str) -> list[str]:
    """The issue's targets, each with its measured value."""
    login_rps = median([r["login"]["rps"] for r in rounds])
    me_alone_p99 = median([r["me"]["p99_us"] for r in rounds])
    flood_p99 = median([r["me during login flood"]["p99_us"] for r in rounds])
    checks = [
        ("GET /users/me throughput >= 0.50x floor", paired(rounds, "me", "floor", "rps"), ">=", 0.50),
        ("GET /users/me CPU/request <= 2.2x floor", paired(rounds, "me", "floor", "app_cpu_ms"), "<=", 2.2),
        ("GET /users/me p99 <= 3x floor p99", paired(rounds, "me", "floor", "p99_us"), "<=", 3.0),
        ("instance PSS (master + 2 workers) <= 110 MiB", memory["instance_pss"], "<=", 110.0),
        ("each added worker (its private memory, USS) <= 25 MiB", memory["worker_uss"], "<=", 25.0),
        ("login/s >= 30 (3x the fastapi template)", login_rps, ">=", 30.0),
        (
            f"deep page p50 <= 1.5x first page ({large})",
            paired(rounds, f"list deep {large}", f"list first {large}", "p50_us"),
            "<=",
            1.5,
        ),
        (
            f"deep page p50 {large} <= 1.5x {small}",
            paired(rounds, f"list deep {large}", f"list deep {small}", "p50_us"),
            "<=",
            1.5,
        ),
        ("me p99 during a login flood <= 3x me p99", flood_p99 / me_alone_p99, "<=", 3.0),
    ]
    lines = []
    for label, value, op, limit in checks:
        ok = value >= limit if op == ">=" else value <= limit
        lines.append(f"  [{'met' if ok else 'NOT met'}] {label}: {value:.2f}")
    return lines


def hashing(rounds: list[dict[str, dict[str, Any]]]) -> str:
    """What the bound on hashing did: logins done and refused (503 hashing_busy) per second."""
    login = {k: median([r["login"][k] for r in rounds]) for k in ("rps", "busy_rps")}
    flood = {k: median([r["me during login flood"]["flood"][k] for r in rounds]) for k in ("rps", "busy_rps")}
    return (
        f"Logins: {login['rps']:.0f}/s succeeded and {login['busy_rps']:.0f}/s were refused (503 hashing_busy); "
        f"the flood beside /me: {flood['rps']:.0f}/s and {flood['busy_rps']:.0f}/s."
    )


def served(server: Server) -> int:
    """Requests the instance has answered so far, from its own /metrics (the archive keeps recycled workers')."""
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    return int(sum(float(v) for v in re.findall(r"^http_requests_total\{.*\} (\S+)$", text, re.MULTILINE)))


def memory_line(floor: dict[str, float], app: dict[str, float]) -> str:
    return (
        f"Memory after the run, MiB: app instance ({app['workers']:.0f} workers) PSS {app['instance_pss']:.1f} "
        f"(RSS {app['instance_rss']:.1f}), master PSS {app['master_pss']:.1f}, a worker PSS {app['worker_pss']:.1f} "
        f"(RSS {app['worker_rss']:.1f}, private {app['worker_uss']:.1f}); floor instance PSS "
        f"{floor['instance_pss']:.1f} (RSS {floor['instance_rss']:.1f})."
    )


def growth_line(warm: dict[str, float], end: dict[str, float], requests: int) -> str:
    """How much a worker grew over the measured rounds: the case for (or against) recycling workers."""
    return (
        f"Worker growth: private memory {warm['worker_uss']:.1f} -> {end['worker_uss']:.1f} MiB, RSS "
        f"{warm['worker_rss']:.1f} -> {end['worker_rss']:.1f} MiB over {requests:,} requests after the warm-up."
    )


def short(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL server binaries not found (Debian: apt-get install postgresql-15)")
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (Debian: apt-get install {tool})")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below still runs
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    load_at_start = os.getloadavg()  # other work on the machine skews everything; the record says how much
    print(f"bench: {ROUNDS} rounds x {SECONDS} s per case, {CONNECTIONS} connections; logs in {logs}", flush=True)
    cluster = Cluster(bindir)
    try:
        cluster.start()
        redis = start_redis(logs)
        large, small = short(USERS), short(SMALL_USERS)
        urls = {
            "app": prepare_database(cluster, "bench_large", USERS, redis.url, logs),
            "app_small": prepare_database(cluster, "bench_small", SMALL_USERS, redis.url, logs),
        }
        envs = {name: app_env(url, redis.url) for name, url in urls.items()}
        deep, deep_small = deep_cursor(urls["app"]), deep_cursor(urls["app_small"])
        login_payload = {"email": MEMBER, "password": PASSWORD}
        by_email = deep_cursor(urls["app"], "email")
        probes: list[list[Any]] = [
            ["me", "GET", "/api/v1/users/me", None, "member"],
            ["login", "POST", "/api/v1/auth/login", login_payload, None],
            ["list first page", "GET", "/api/v1/users", None, "admin"],
            ["list deep page", "GET", f"/api/v1/users?cursor={deep}", None, "admin"],
            ["filter role=admin", "GET", "/api/v1/users?role=admin", None, "admin"],
            ["filter is_active=false", "GET", "/api/v1/users?is_active=false", None, "admin"],
            ["filter email substring", "GET", "/api/v1/users?email=user4242", None, "admin"],
            ["filter email, 2 letters", "GET", "/api/v1/users?email=zq", None, "admin"],
            ["filter name substring", "GET", "/api/v1/users?name=User%204242", None, "admin"],
            ["sort email", "GET", "/api/v1/users?sort=email", None, "admin"],
            ["sort email, deep page", "GET", f"/api/v1/users?sort=email&cursor={by_email}", None, "admin"],
            ["sort created_at desc", "GET", "/api/v1/users?order=desc", None, "admin"],
        ]
        matrix = list_probes(urls["app"])
        probed = probe(cluster, envs["app"], redis, probes + matrix, logs)

        servers = {
            # The floor never recycles its workers: it stays the same yardstick whatever the app's settings.
            "floor": serve("floor", "bench.floor:app", {**base_env(), "GUNICORN_MAX_REQUESTS": "0"}, "/", logs),
            "app": serve("app", "wsgi:app", envs["app"], "/api/v1/health/ready", logs),
            "app_small": serve("app_small", "wsgi:app", envs["app_small"], "/api/v1/health/ready", logs),
        }
        member, admin, admin_small = (
            login(servers["app"], MEMBER),
            login(servers["app"], ADMIN),
            login(servers["app_small"], ADMIN),
        )
        login_body = json.dumps(login_payload)
        cases = [
            Case("floor", "floor", "/"),
            Case("me", "app", "/api/v1/users/me", token=member),
            # No token, database or Redis: what the app's own hooks, restx and Flask cost a request.
            Case("live (app, no auth)", "app", "/api/v1/health/live"),
            Case(f"list first {large}", "app", "/api/v1/users", token=admin),
            Case(f"list deep {large}", "app", f"/api/v1/users?cursor={deep}", token=admin),
            Case(f"list first {small}", "app_small", "/api/v1/users", token=admin_small),
            Case(f"list deep {small}", "app_small", f"/api/v1/users?cursor={deep_small}", token=admin_small),
            Case("login", "app", "/api/v1/auth/login", method="POST", body=login_body, hashes=True),
            Case("me during login flood", "app", "/api/v1/users/me", token=member, connections=4),
        ]
        flood = Case("login flood", "app", "/api/v1/auth/login", method="POST", body=login_body, hashes=True)

        for case in cases:  # warm-up: imports, pools, caches; not recorded
            run_case(case, servers, cluster, redis, 1, flood if case.name == "me during login flood" else None)
        warm = servers["app"].memory()
        served_warm = served(servers["app"])
        rounds: list[dict[str, dict[str, Any]]] = []
        for number in range(ROUNDS):
            order = cases[number % len(cases) :] + cases[: number % len(cases)]  # rotate to spread drift
            results = {}
            for case in order:
                results[case.name] = run_case(
                    case, servers, cluster, redis, SECONDS, flood if case.name == "me during login flood" else None
                )
            rounds.append(results)
            print(f"  round {number + 1}/{ROUNDS} done", flush=True)

        print_probe(probed, large, [label for label, *_ in matrix])
        report = table(rounds, cases, servers)
        memory = servers["app"].memory()
        growth = growth_line(warm, memory, served(servers["app"]) - served_warm)
        checks = targets(rounds, memory, large, small)
        load = f"load average {load_at_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        print(f"\nMedians of {ROUNDS} rounds ({load}); x = median of the per-round ratio to the floor (same round).")
        print("CPU = gunicorn master + workers; PG = Postgres server processes; RSS = peak per worker.\n")
        print(report)
        print("\n" + hashing(rounds))
        print(memory_line(servers["floor"].memory(), memory))
        print(growth)
        print("\nTargets:")
        print("\n".join(checks))
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "settings": {"rounds": ROUNDS, "seconds": SECONDS, "users": USERS, "connections": CONNECTIONS},
                    "machine": {
                        "cpus": os.cpu_count(),
                        "load_avg_start": load_at_start,
                        "load_avg_end": os.getloadavg(),
                    },
                    "table": report.splitlines(),
                    "targets": checks,
                    "memory": {"floor": servers["floor"].memory(), "app_warm": warm, "app_end": memory},
                    "growth": growth,
                    "rounds": rounds,
                    "probes": probed,
                },
                indent=1,
            )
            + "\n"
        )
        print(f"\nRaw results: {OUT.relative_to(ROOT) if OUT.is_relative_to(ROOT) else OUT}")
        shutil.rmtree(logs, ignore_errors=True)  # kept only when something went wrong
    finally:
        stop_all()
        cluster.stop()


if __name__ == "__main__":
    main()
