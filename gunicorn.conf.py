"""gunicorn settings, from the environment (`gunicorn -c gunicorn.conf.py wsgi:app`)."""

import gc
import glob
import os
import tempfile
import time
from typing import Any

# Before anything imports prometheus_client (the logging setup below imports the app): it decides at
# import whether metrics go to per-process files that /metrics adds up across the workers.
metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="prometheus-"))
# The lock files that bound password hashing across this instance's workers (app/core/hashing.py).
if not os.environ.get("HASH_SLOTS_DIR"):
    os.environ["HASH_SLOTS_DIR"] = tempfile.mkdtemp(prefix="hash-slots-")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# sched_getaffinity sees the CPUs a container is pinned to; cpu_count would see the whole host.
cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
# gunicorn's own rule of thumb, capped: every worker holds database connections and hashes
# passwords with argon2 (7 MiB each), so more workers than this costs more than it gains.
workers = _int("WEB_CONCURRENCY", min(2 * cpus + 1, 8))
os.environ["WEB_CONCURRENCY"] = str(workers)  # the app leaves one of them free of password hashing
# 1 keeps the sync worker, whose timeout kills a stuck request; more switches to gthread.
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# No recycling by default: a worker's memory stays flat under load (bench/README.md), and recycling every
# 1000 requests cost a quarter of the throughput, its workers restarting within milliseconds of each other.
# Set it to bound a leak you have found; the jitter then spreads the restarts.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 0)
# Whose X-Forwarded-Proto gunicorn believes; the app reads the same setting for X-Forwarded-For (PROXY_HOPS).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# gunicorn's largest request line (its own maximum): nginx refuses longer ones itself (8 KiB buffers), as
# problem+json, so no request line nginx passes on meets gunicorn's HTML 414.
limit_request_line = 8190
# gunicorn's own answers (a request line or headers it refuses) as problem+json with the app's security
# headers, not its HTML page: app/core/serving.py. Chosen here, as gunicorn picks gthread only for "sync".
worker_class = "app.core.serving." + ("ProblemSyncWorker" if threads == 1 else "ProblemThreadWorker")

# gunicorn's access log is off: the app writes the one access line per request itself (app/core/logs.py),
# because only the app knows the user, and a token in the query string would be in gunicorn's line.
accesslog = None
logger_class = "app.core.serving.AppLogger"  # which also skips the fields of gunicorn's access line
errorlog = "-"
# gunicorn's own lines (start, workers, WORKER TIMEOUT) in the app's shape, through the app's handler.
logconfig_dict = {
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
    "handlers": {"stderr": {"class": "app.core.logs.StderrHandler", "formatter": "app"}},
    "formatters": {"app": {"()": "app.core.logs.formatter"}},
}
# The master makes the app once and forks the workers from it: they share its memory (imports, the app)
# instead of each importing its own copy, and a recycled worker is ready at once. create_app does no I/O,
# so no connection is shared across the fork. Code changes need a restart, not a HUP.
preload_app = True
# gunicorn >= 25 opens a control socket under $HOME by default; a read-only container has no writable $HOME.
control_socket_disable = True


# While this file exists readiness answers 503 draining (app/health.py): SIGTERM has come, and the
# instance takes the requests already queued for it but wants no more.
drain_flag = os.environ["GUNICORN_DRAIN_FLAG"] = os.path.join(tempfile.mkdtemp(prefix="drain-"), "draining")


def when_ready(server: Any) -> None:
    """Share the listeners with the workers, and drain before stopping on SIGTERM: gunicorn closes its
    listeners first, which resets every connection still queued there (its request lost, or a 502 at
    the proxy). Workers keep taking the queued requests until none is left; then the listeners drop
    new connection attempts (their clients try again a second later and are refused, which a proxy
    retries elsewhere), and take what came in between; all within graceful_timeout. Then gunicorn
    stops as usual, letting the requests in flight finish."""
    # here, not above: after PROMETHEUS_MULTIPROC_DIR is set
    from app.core.overload import accept_queue, refuse_new_connections

    # The workers, forked after this, read the queue too: readiness fails while it is long.
    os.environ["GUNICORN_LISTEN_FDS"] = ",".join(str(listener.fileno()) for listener in server.LISTENERS)
    stop = server.handle_term

    def handle_term() -> None:
        with open(drain_flag, "w"):
            pass
        deadline = time.monotonic() + server.cfg.graceful_timeout

        def drain() -> None:
            while sum(accept_queue(listener.sock) for listener in server.LISTENERS) and time.monotonic() < deadline:
                time.sleep(0.05)

        drain()  # still taking connections meanwhile: readiness answers them 503 draining
        for listener in server.LISTENERS:
            if not refuse_new_connections(listener.sock):
                # Some kernels want CAP_NET_ADMIN for a socket filter: new connections are then reset at close.
                server.log.warning("drain.filter_refused: connections arriving as the port closes may be reset")
        drain()  # those that arrived between the last look at the queue and the filter
        stop()

    server.handle_term = handle_term
    if server.cfg.preload_app:
        from app.core.serving import warm

        warm(server.app.wsgi())  # gunicorn calls this before it forks the first workers


def on_starting(_server: Any) -> None:
    """Start the metrics from zero: an earlier run's files would be added in, and so would the master's own
    (it made the app: preload_app), as if it were a worker; each worker states its gauges itself."""
    for path in glob.glob(os.path.join(metrics_dir, "*.db")):
        os.remove(path)


def pre_fork(_server: Any, _worker: Any) -> None:
    """Freeze the preloaded app's objects before each fork: a worker's full garbage collection then skips
    them, instead of writing to every one and so making a private copy of the pages that hold them
    (28 MiB of the master's memory per worker, tests/core/test_worker_memory.py)."""
    gc.freeze()


def child_exit(_server: Any, worker: Any) -> None:
    """Fold a dead worker's counters into the archive files and drop its files: recycling leaves no trail."""
    from app.core.metrics import archive_dead_process  # here, not above: only after PROMETHEUS_MULTIPROC_DIR is set

    archive_dead_process(worker.pid, metrics_dir)
