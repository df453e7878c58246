"""Load shedding: a request that waited too long for a free worker is answered 503 at once, not served.

Under a long lock every worker is busy and requests queue in the listen socket's backlog, where the
app cannot see them; with nothing shed, each waits for all those ahead of it (14.8 s median with 30
callers and two workers, then nginx's 504 at 35 s). The kernel knows how long ago a request's bytes
arrived (TCP_INFO's last_data_recv), whoever sent it: nginx, an ingress, a probe. A request found
to have waited longer than REQUEST_QUEUE_TIMEOUT costs its worker microseconds, so the queue drains,
and no request waits much longer than that timeout plus the longest a request may run.
"""

import ctypes
import os
import socket
import struct
from typing import Any

from flask import Flask, current_app, request

from app.core.errors import ApiError
from app.toolkit.markers import marked

# struct tcp_info (linux/tcp.h, an append-only ABI): eight one-byte fields, then 32-bit ones, of which
# tcpi_last_data_recv (milliseconds) is the twelfth: 52 bytes in.
_LAST_DATA_RECV = struct.Struct("=52xI")
_TCP_INFO = getattr(socket, "TCP_INFO", None)
# On a listening socket, tcpi_unacked (the fifth 32-bit field) counts the connections waiting to be accepted.
_ACCEPT_QUEUE = struct.Struct("=24xI")


def accept_queue(sock: socket.socket) -> int:
    """Connections waiting in a TCP listener's queue for a worker to take them; 0 where unknown."""
    if _TCP_INFO is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return 0
    try:
        return int(_ACCEPT_QUEUE.unpack_from(sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _ACCEPT_QUEUE.size))[0])
    except (OSError, struct.error):
        return 0


# A classic BPF program of one instruction, BPF_RET|BPF_K 0: "keep no byte", so the socket drops every packet.
_DROP_ALL = struct.pack("=HBBI", 0x06, 0, 0, 0)
_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26 if os.uname().sysname == "Linux" else None)


def refuse_new_connections(sock: socket.socket) -> bool:
    """Make a TCP listener drop every new connection attempt while the connections already queued stay
    there for the workers; False where the kernel cannot (no Linux socket filters).

    Closing a listener resets the connections queued on it: a request a proxy has already sent is lost,
    and a POST or PATCH is not retried. A dropped SYN is sent again a second later, by when the listener
    is closed: the client is refused and the proxy tries another instance, whatever the method.
    """
    if _SO_ATTACH_FILTER is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    program = ctypes.create_string_buffer(_DROP_ALL, len(_DROP_ALL))
    fprog = struct.pack("@HP", 1, ctypes.addressof(program))  # struct sock_fprog {len, filter*}; the kernel copies it
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def waiting_for_workers() -> int | None:
    """Requests queued for this gunicorn instance's workers (GUNICORN_LISTEN_FDS, from gunicorn.conf.py);
    None outside gunicorn."""
    fds = os.environ.get("GUNICORN_LISTEN_FDS")
    if not fds:
        return None
    waiting = 0
    for fd in fds.split(","):
        with socket.socket(fileno=os.dup(int(fd))) as sock:  # a duplicate: closing it leaves gunicorn's open
            waiting += accept_queue(sock)
    return waiting


def queue_wait(environ: dict[str, Any]) -> float | None:
    """Seconds since the request's last bytes reached the server; None where the kernel cannot say."""
    sock = environ.get("gunicorn.socket")
    if _TCP_INFO is None or not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _LAST_DATA_RECV.size)
    except OSError:
        return None
    if len(info) < _LAST_DATA_RECV.size:
        return None
    milliseconds: int = _LAST_DATA_RECV.unpack_from(info)[0]
    return milliseconds / 1000


def _shed_stale() -> None:
    limit = current_app.config["REQUEST_QUEUE_TIMEOUT"]
    if not limit or marked("always_answered"):
        return
    waited = queue_wait(request.environ)
    if waited is not None and waited > limit:
        raise ApiError(503, "overloaded", "The service is too busy to take this request now; try again shortly.")


def init_app(app: Flask) -> None:
    """Shed stale requests before any other hook spends time on them (call it before the others)."""
    app.before_request(_shed_stale)
