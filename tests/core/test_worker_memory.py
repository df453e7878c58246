"""What a gunicorn worker forked from the preloaded master costs in memory of its own."""

import gc
import os
import runpy
from pathlib import Path

import pytest
from flask import Flask

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def private_mib() -> float:
    """This process's private memory (USS): what it costs beyond the pages it shares."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
    return sum(int(fields[name].split()[0]) for name in ("Private_Clean", "Private_Dirty")) / 1024


def test_a_full_collection_in_a_worker_copies_none_of_the_masters_objects(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's first full garbage collection writes to the header of every object it scans. Without
    gc.freeze() in the master before the fork, that is every object of the preloaded app and its imports,
    and the worker ends up with a private copy of each page that holds one (28 MiB here)."""
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the config file sets defaults in the environment
    hooks = runpy.run_path(str(CONF))
    hooks.get("pre_fork", lambda _server, _worker: None)(None, None)
    read, write = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the worker: measure, collect, measure again, report and leave at once
            before = private_mib()
            gc.collect()
            os.write(write, f"{private_mib() - before:.1f}".encode())
            os._exit(0)
        os.waitpid(pid, 0)
        grown = float(os.read(read, 64))
    finally:
        gc.unfreeze()
        os.close(read)
        os.close(write)
    assert grown < 5, f"a full collection made {grown} MiB of the master's memory the worker's own"


def test_the_master_builds_what_every_worker_would_before_the_fork_without_a_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gunicorn's master, ready to fork, builds the URL matcher, the ORM's mappers and the hot statements'
    SQL once, so the workers share them instead of each building its own copy; with the database down."""
    from types import SimpleNamespace

    from sqlalchemy import event

    from app import create_app
    from app.core.extensions import db
    from tests.support.app import settings

    monkeypatch.setattr(os, "environ", dict(os.environ))
    app = create_app(settings(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none"))  # nothing listens on 9
    connected: list[object] = []
    with app.app_context():
        event.listen(db.engine, "connect", lambda *_: connected.append(1))
    hooks = runpy.run_path(str(CONF))
    loaded = SimpleNamespace(wsgi=lambda: app)
    server = SimpleNamespace(LISTENERS=[], handle_term=lambda: None, cfg=SimpleNamespace(preload_app=True), app=loaded)
    assert app.url_map._remap  # built at the first request otherwise
    hooks["when_ready"](server)
    assert not app.url_map._remap
    assert not connected
    hooks["when_ready"](SimpleNamespace(**{**vars(server), "app": SimpleNamespace(wsgi=lambda: Flask("other"))}))
