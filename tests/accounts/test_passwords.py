"""The password blocklists: the bundled breached-password list and the optional breach service."""

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from flask import Flask

from app import create_app
from app.core.config import ConfigError
from tests.support.app import PASSWORD, ROOT, assert_problem, register, settings


def refusal(response: Any) -> str:
    body = assert_problem(response, 422, "validation_failed")
    assert list(body["errors"]) == ["password"]
    return str(body["errors"]["password"][0])


@pytest.mark.parametrize(
    "password",
    [
        "123456789012345",  # breached passwords of the minimum length and more
        "qwertyuiopasdfghjkl",
        "qazwsxedcrfvtgb",
        "iloveyouforever",
        "ILoveYouForever",  # in any case
        "correct horse battery staple",  # published as an example: on every attacker's list
        "correct.horse.battery.staple",  # the same once punctuation goes
    ],
)
def test_breached_and_famous_passwords_are_refused(client: Any, password: str) -> None:
    assert "too common" in refusal(register(client, password=password))


def test_the_documented_example_passwords_are_accepted(client: Any) -> None:
    documented = set(re.findall(r'"password": "([^"]+)"', (ROOT / "README.md").read_text()))
    assert documented, "the README shows a password to register with"
    for number, password in enumerate(sorted(documented | {PASSWORD})):
        assert register(client, email=f"reader{number}@example.com", password=password).status_code == 201


# --- the breach service (Have I Been Pwned's range API), a local stand-in -------------------------


class RangeApi(BaseHTTPRequestHandler):
    """GET /range/<5 hex digits> -> SUFFIX:COUNT lines, as the real service answers."""

    answers: ClassVar[dict[str, str]] = {}
    status = 200
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Add-Padding")))
        body = self.answers.get(self.path.rsplit("/", 1)[-1], "").encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def range_api() -> Iterator[type[RangeApi]]:
    handler = type("Handler", (RangeApi,), {"answers": {}, "status": 200, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/range/"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def checking(app: Flask) -> Callable[[str], Flask]:
    """checking(url) -> an app on the test database that asks the breach service at url."""

    def make(url: str) -> Flask:
        return create_app(settings(DATABASE_URL=app.config["DATABASE_URL"], PWNED_PASSWORDS_URL=url))

    return make


def sha1_parts(password: str) -> tuple[str, str]:
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
    return digest[:5], digest[5:]


STRONG = "walnut orbit lantern vessel"  # on no bundled list


def test_a_password_the_breach_service_has_seen_is_refused(
    range_api: type[RangeApi], checking: Callable[[str], Flask]
) -> None:
    prefix, suffix = sha1_parts(STRONG)
    range_api.answers[prefix] = f"0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n{suffix}:42\r\n"
    client = checking(range_api.url).test_client()  # type: ignore[attr-defined]
    assert "data breach" in refusal(register(client, password=STRONG))
    # Only the first five hex digits of the hash leave the process, and the answer asks for padding.
    assert range_api.seen == [(f"/range/{prefix}", "true")]


def test_padding_and_unseen_passwords_pass_the_breach_service(
    range_api: type[RangeApi], checking: Callable[[str], Flask]
) -> None:
    prefix, suffix = sha1_parts(STRONG)
    range_api.answers[prefix] = f"{suffix}:0\r\n"  # a padding line: count 0 is no sighting
    client = checking(range_api.url).test_client()  # type: ignore[attr-defined]
    assert register(client, password=STRONG).status_code == 201
    assert register(client, email="bea@example.com", password="a different strong passphrase").status_code == 201


@pytest.mark.parametrize("outage", ["error status", "nothing listening"])
def test_the_breach_check_fails_open_when_the_service_is_out(
    range_api: type[RangeApi],
    checking: Callable[[str], Flask],
    caplog: pytest.LogCaptureFixture,
    outage: str,
) -> None:
    url: str = range_api.url  # type: ignore[attr-defined]
    if outage == "error status":
        range_api.status = 503
    else:
        url = "http://127.0.0.1:9/range/"  # the discard port: nothing listens there
    response = register(checking(url).test_client(), password=STRONG)
    assert response.status_code == 201  # the bundled list still applied; sign-up does not wait on a third party
    assert "breach_check.unavailable" in caplog.text


@pytest.mark.parametrize("url", ["file:///etc/passwd", "api.pwnedpasswords.com/range/", "ftp://example.com/"])
def test_a_breach_service_url_that_is_not_http_is_refused_at_start(url: str) -> None:
    with pytest.raises(ConfigError, match="CFG007"):
        create_app(settings(DATABASE_URL="sqlite://", PWNED_PASSWORDS_URL=url))


def test_the_breach_service_is_not_asked_unless_configured(range_api: type[RangeApi], client: Any) -> None:
    assert register(client, password=STRONG).status_code == 201
    assert range_api.seen == []
