"""Load shedding on the kernel's word: a request whose bytes have waited longer than REQUEST_QUEUE_TIMEOUT
is answered 503 overloaded, except where an answer is always wanted. (Under gunicorn, nginx and a long
lock: tests/system/test_overload.py.)"""

import socket
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from app.core.overload import accept_queue, queue_wait, refuse_new_connections
from tests.support.app import assert_problem, settings


@pytest.fixture
def waited() -> Iterator[socket.socket]:
    """The server side of a loopback connection whose request arrived 1.2 s before it was accepted."""
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname()) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1.2)  # the request waits in the backlog, as it does behind busy workers
        accepted, _ = listener.accept()
        with accepted:
            yield accepted


def call(app: Flask, path: str, sock: socket.socket) -> TestResponse:
    return app.test_client().get(path, environ_overrides={"gunicorn.socket": sock})


def test_the_kernel_says_how_long_the_request_waited(waited: socket.socket) -> None:
    wait = queue_wait({"gunicorn.socket": waited})
    assert wait is not None and wait >= 1.1
    assert queue_wait({}) is None  # not under gunicorn: nothing to measure, nothing shed


def test_a_request_that_waited_too_long_is_shed(database_app: Flask, waited: socket.socket) -> None:
    url = database_app.config["DATABASE_URL"]
    app = create_app(settings(DATABASE_URL=url, REQUEST_QUEUE_TIMEOUT=1))
    shed = call(app, "/api/v1/users/me", waited)
    assert_problem(shed, 503, "overloaded")
    assert shed.headers["Retry-After"] == "5"
    assert_problem(call(app, "/api/v1/health/ready", waited), 503, "overloaded")  # readiness shows saturation
    assert call(app, "/api/v1/health/live", waited).status_code == 200
    assert call(app, "/metrics", waited).status_code == 200
    patient = create_app(settings(DATABASE_URL=url, REQUEST_QUEUE_TIMEOUT=5))
    assert call(patient, "/api/v1/health/ready", waited).status_code == 200


def test_readiness_fails_while_more_requests_queue_than_there_are_workers(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listen queue, as gunicorn.conf.py shares it with the workers (GUNICORN_LISTEN_FDS)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        monkeypatch.setenv("GUNICORN_LISTEN_FDS", str(listener.fileno()))
        monkeypatch.setenv("WEB_CONCURRENCY", "2")
        queued = [socket.create_connection(listener.getsockname()) for _ in range(2)]
        assert accept_queue(listener) == 2
        assert client.get("/api/v1/health/ready").status_code == 200  # no more waiting than workers
        queued.append(socket.create_connection(listener.getsockname()))
        assert_problem(client.get("/api/v1/health/ready"), 503, "saturated")
        for connection in queued:
            connection.close()
        assert listener.fileno() != -1  # readiness looked at a duplicate, and left gunicorn's socket open


def test_a_listener_that_refuses_new_connections_still_hands_out_the_queued_ones() -> None:
    """What the drain on SIGTERM relies on: after refuse_new_connections a new client gets no
    connection at all, while one already queued is accepted and its bytes arrive."""
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname()) as queued:
        assert refuse_new_connections(listener)
        with pytest.raises(TimeoutError):
            socket.create_connection(listener.getsockname(), timeout=0.5)
        assert accept_queue(listener) == 1
        queued.sendall(b"GET / HTTP/1.1\r\n")
        accepted, _ = listener.accept()
        with accepted:
            accepted.settimeout(5)
            assert accepted.recv(64) == b"GET / HTTP/1.1\r\n"
