"""Password hashing: argon2id, at most HASH_CONCURRENCY hashes at once per instance, so a flood leaves a worker free.

In a burst a request waits for a slot about as long as two hashes take (HASH_WAIT_MS, or measured), so
logins arriving together take turns instead of being refused. Once the slots have been contended without
a break of two hashes for about twenty hashes (at least 0.5 s: a flood, not a burst), a request that
finds none free gets 503 hashing_busy at once, leaving its worker to other requests; the first such
break ends the flood. The workers share when contention began and when it last happened as the mtimes
of two files in the folder: only times, so no worker, killed or not, can leave the instance refusing.

A slot is an exclusive flock on one of the files slot-0 ... slot-(N-1) in HASH_SLOTS_DIR, a folder the
instance's workers share (gunicorn.conf.py makes one). The kernel releases a lock when its holder
exits, so a worker killed mid-hash never leaks a slot, as it would a POSIX or System V semaphore.
"""

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from flask import Flask, current_app, g

from app.core.errors import ApiError
from app.toolkit.markers import marked

# One of OWASP's equivalent argon2id minimums (m=7 MiB, t=5, p=1): as strong as m=19 MiB, t=2, and a
# little faster, but each hash holds 7 MiB instead of 19 at its peak, in every worker. Hashes made with
# other parameters still verify, and are redone with these at the next successful login.
hasher = PasswordHasher(time_cost=5, memory_cost=7168, parallelism=1)


@cache
def _own_folder() -> str:
    # Outside gunicorn (the flask CLI, the dev server, tests) the process is its own instance.
    folder = tempfile.mkdtemp(prefix="hash-slots-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _take(folder: str, slots: int) -> int | None:
    """An open file descriptor holding a free slot's lock, or None when every slot is taken."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for number in range(slots):
        # Opened anew each time: a flock belongs to the open file, which two threads must not share.
        fd = os.open(os.path.join(folder, f"slot-{number}"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


# Seconds the last hash in this process took (a first guess until one is made): the wait is two of them.
_last_hash_seconds = 0.05
# How often a waiting request looks for a free slot: a small fraction of a hash.
_POLL_SECONDS = 0.002


def _wait_seconds() -> float:
    configured: int = current_app.config["HASH_WAIT_MS"]
    # At least 0.1 s: the hash a request waits for runs on a busy CPU, slower than this process's last one.
    return configured / 1000 if configured > 0 else max(0.1, 2 * _last_hash_seconds)


def _window_seconds() -> float:
    configured: int = current_app.config["HASH_WAIT_MS"]
    one_hash = configured / 2000 if configured > 0 else _last_hash_seconds  # the wait is about two hashes
    # About twenty hashes, at least half a second: a burst of a dozen logins through one slot keeps it
    # contended for about eleven, and a slower hash on a busy machine lengthens the window with it.
    return max(0.5, 20 * one_hash)


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


def _stamp(path: str, now_ns: int) -> None:
    try:
        os.utime(path, ns=(now_ns, now_ns))
    except FileNotFoundError:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.utime(path, ns=(now_ns, now_ns))


def _markers(folder: str) -> tuple[str, str]:
    # Two mtimes the workers share: when this period of contention began, and its latest contention. Races
    # between workers only move them a little; being times, they can never keep the instance refusing.
    return os.path.join(folder, "contended-since"), os.path.join(folder, "contended-last")


def _may_wait(folder: str) -> bool:
    """Record that every slot was taken just now; whether the request may wait: yes while the slots have
    been contended without a break for less than the window (a burst), no after it (a flood)."""
    since, last = _markers(folder)
    now = time.time_ns()
    if now - _mtime_ns(last) > _wait_seconds() * 1e9:  # a break of about two hashes ended the last period
        _stamp(since, now)
    _stamp(last, now)
    return now - _mtime_ns(since) < _window_seconds() * 1e9


def _flooded(folder: str) -> bool:
    """Whether the slots are in a flood now: contended for longer than the window, and without a break since."""
    since, last = _markers(folder)
    now = time.time_ns()
    return now - _mtime_ns(last) <= _wait_seconds() * 1e9 and now - _mtime_ns(since) >= _window_seconds() * 1e9


def _busy() -> ApiError:
    # A slot frees within a hash or two: the next second is worth a retry (Retry-After's smallest unit).
    return ApiError(503, "hashing_busy", "Too many password checks are running; try again shortly.", retry_after=1)


def _refuse_in_a_flood() -> None:
    """Refuse a request for a handler marked @hashes_password at once while the slots are flooded and none is
    free: before its rate limits, body and database work, which made each refusal cost its worker about as
    much as an ordinary request, and the requests queued behind a flood wait for every one of them."""
    if not marked("hashes_password"):
        return
    folder = current_app.config["HASH_SLOTS_DIR"] or _own_folder()
    if not _flooded(folder):
        return
    fd = _take(folder, current_app.config["HASH_SLOTS"])
    if fd is not None:  # one came free: the handler takes its turn
        os.close(fd)
        return
    _stamp(_markers(folder)[1], time.time_ns())  # contended still: the flood goes on
    raise _busy()


def _take_within(folder: str, slots: int, seconds: float) -> int | None:
    """A free slot's lock, looked for until `seconds` pass; None if none came free. Polls: a blocking
    flock cannot time out, and an alarm signal would not work in a threaded worker."""
    deadline = time.monotonic() + seconds
    while (fd := _take(folder, slots)) is None and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    return fd


@contextmanager
def hashing_slot() -> Iterator[None]:
    """Hold a hashing slot for the block (or the one this request already holds); 503 hashing_busy when
    none is free and the slots are flooded, or none comes free within about two hashes' time."""
    if g.get("hashing_slot_held"):
        yield
        return
    folder = current_app.config["HASH_SLOTS_DIR"] or _own_folder()
    slots = current_app.config["HASH_SLOTS"]
    fd = _take(folder, slots)
    # A short wait, and only in a burst: a sync worker waiting for a slot throughout a flood would be the
    # very worker the bound keeps free for other requests.
    if fd is None and _may_wait(folder):
        fd = _take_within(folder, slots, _wait_seconds())
    if fd is None:
        raise _busy()
    g.hashing_slot_held = True
    try:
        yield
    finally:
        g.hashing_slot_held = False
        os.close(fd)  # releases the lock


@contextmanager
def _measured() -> Iterator[None]:
    global _last_hash_seconds  # one number per process, read by the next wait
    started = time.perf_counter()
    yield
    _last_hash_seconds = time.perf_counter() - started


def hash_password(password: str) -> str:
    """A new argon2id hash of the password, made in a hashing slot."""
    with hashing_slot(), _measured():
        return hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash, checked in a hashing slot."""
    with hashing_slot(), _measured():
        try:
            return hasher.verify(password_hash, password)
        except (VerifyMismatchError, InvalidHashError):
            return False


def needs_rehash(password_hash: str) -> bool:
    return hasher.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return hasher.hash("not a real password, only spends the same time")


def spend_one_hash(password: str) -> None:
    """Cost an unknown-account login exactly one hash, and a slot, so timing does not reveal accounts."""
    dummy = _dummy_hash()  # made once, outside the slot's measurement
    with hashing_slot(), _measured(), contextlib.suppress(VerifyMismatchError):
        hasher.verify(dummy, password)


def init_app(app: Flask) -> None:
    """Refuse flooded password checks first (call it before the rate limits' hooks)."""
    app.before_request(_refuse_in_a_flood)
