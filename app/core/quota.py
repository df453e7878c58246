"""The general per-caller quota, counted in each process and added to Redis in batches.

It is a fair-use quota, not a security limit: the limits on logins, resets and password guesses stay
exact in Redis through Flask-Limiter (app/core/ratelimit.py). Counting it there cost a Redis round trip
and Flask-Limiter's bookkeeping on every request, a quarter of the throughput of GET /users/me. Here each
process counts its callers' requests itself and adds them to Redis every QUOTA_BATCH requests of a
caller (or after a second), reading back the global count. A caller can get at most processes x
QUOTA_BATCH requests more than the limit in a window (the unsynced counts of the other processes); a
process that sees the limit passed refuses at once. Windows are fixed and open at a caller's first
request, as Flask-Limiter's are. Without Redis (memory://) the count is exact per process; with Redis
gone, each process goes on counting its own requests (the quota fails open, by the number of
processes) and tries Redis again after 1, 2, 4 ... 16 s.
"""

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from limits import RateLimitItem, parse

_SYNC_SECONDS = 1.0  # a caller's count reaches Redis at least this often while it sends requests
_MAX_BACKOFF = 16.0
_MAX_CALLERS = 50_000  # callers kept per process before those with nothing unsynced are dropped

# INCRBY, the window's expiry set by its first count only, and what is left of it: one round trip.
_ADD = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {count, redis.call('PTTL', KEYS[1])}
"""

log = logging.getLogger("app.ratelimit")


@lru_cache(maxsize=16)
def parse_limit(text: str) -> RateLimitItem:
    """The setting's text ("600 per minute") as an amount and a window, parsed once."""
    return parse(text)


@dataclass(slots=True)
class _Window:
    reset_at: float  # wall-clock end of the caller's current window
    count: int = 0  # the global count at the last sync (this process's own count without Redis)
    pending: int = 0  # this process's requests not yet added to Redis
    synced_at: float = 0.0  # never: the first request of a window asks Redis


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request is within the quota, and the window it was counted in."""

    allowed: bool
    amount: int
    count: int
    reset_at: float


class Quota:
    """One process's counts of the general quota, with Redis (redis_url) or without (None)."""

    def __init__(self, redis_url: str | None, redis_options: dict[str, Any], batch: int) -> None:
        self._url, self._options, self._batch = redis_url, redis_options, max(1, batch)
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()  # gthread workers share one Quota
        self._script: Any = None  # made on first use: after gunicorn forks, never in the master
        self._down_until = 0.0
        self._backoff = 0.0

    def hit(self, key: str, limit: RateLimitItem) -> Verdict:
        """Count one request of a caller and say whether it is within the limit."""
        now = time.time()
        period = limit.get_expiry()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now >= window.reset_at:
                if len(self._windows) >= _MAX_CALLERS:
                    self._sweep(now)
                window = self._windows[key] = _Window(reset_at=now + period)
            window.pending += 1
            delta = 0
            if self._url is None:
                window.count, window.pending = window.count + window.pending, 0
            elif now >= self._down_until and (window.pending >= self._batch or now - window.synced_at >= _SYNC_SECONDS):
                delta, window.pending, window.synced_at = window.pending, 0, now
        if delta:
            self._sync(key, window, delta, period, now)
        count = window.count + window.pending
        return Verdict(count <= limit.amount, limit.amount, count, window.reset_at)

    def _sync(self, key: str, window: _Window, delta: int, period: int, now: float) -> None:
        """Add this process's unsynced requests to Redis and read back the global count."""
        try:
            if self._script is None:
                import redis  # here: only a Redis-backed quota needs the client

                self._script = redis.Redis.from_url(str(self._url), **self._options).register_script(_ADD)
            count, ttl_ms = self._script(keys=["quota/" + key], args=[delta, period * 1000])
        except Exception as e:  # any failure of the store: count on in this process, never fail the request
            with self._lock:
                window.pending += delta
                self._backoff = min(_MAX_BACKOFF, self._backoff * 2 or 1.0)
                self._down_until = now + self._backoff
            log.warning("ratelimit.quota_unreachable", extra={"cause": type(e).__name__, "retry_in": self._backoff})
            return
        with self._lock:
            if self._backoff:
                self._backoff = 0.0
                log.info("ratelimit.quota_reachable")
            window.count = max(window.count, int(count))
            if ttl_ms > 0:
                window.reset_at = now + ttl_ms / 1000

    def _sweep(self, now: float) -> None:
        """Forget ended windows; if that is not enough, the callers whose counts are all in Redis."""
        self._windows = {k: w for k, w in self._windows.items() if w.reset_at > now}
        if len(self._windows) >= _MAX_CALLERS and self._url is not None:
            self._windows = {k: w for k, w in self._windows.items() if w.pending}
