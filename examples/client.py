"""A session with the API: the generated client (clients/python, the package api_client) makes the
calls and types them; this adds what a session needs on top, its tokens, refreshing them, and waiting
as the server asks.

    from api_client.api.users import get_me

    with ApiClient("http://127.0.0.1:8000") as api:
        api.register("ada@example.com", "tulip ledger ferry quartz", "Ada")
        api.login("ada@example.com", "tulip ledger ferry quartz")
        print(api.call(get_me.sync_detailed).value.email)  # value: a User
        api.logout()

`call` takes any generated operation, `sync_detailed` of a module of api_client.api (bind its other
arguments with a lambda or functools.partial), and returns its typed answer with the status and
headers, or raises ApiError with the Problem. It refreshes the access token by itself, before it
expires and when the server answers 401 token_expired, and retries after the Retry-After the server
asks for: a 429, a 503 to a read, and a 503 hashing_busy (a login refused before anything happened).
Refresh tokens are single use, so share one ApiClient per session; two refreshes racing with one token
both get a pair of the same session only within REFRESH_GRACE_SECONDS, so do not lean on it.

Run it against `make run`: python examples/client.py [server URL]
"""

import email.utils
import sys
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Self, TypeVar

import httpx
from api_client import AuthenticatedClient
from api_client.api.auth import login, logout, refresh_tokens, register
from api_client.api.users import get_me
from api_client.models import Login, LoginToken, Problem, Register, Token, User
from api_client.types import Response, Unset

T = TypeVar("T")
# A generated operation with everything but the client bound: get_me.sync_detailed, or
# lambda client: update_me.sync_detailed(client=client, body=..., if_match=etag).
Operation = Callable[..., Response[T | Problem]]


class ApiError(Exception):
    """A 4xx or 5xx answer, with the fields of its application/problem+json body."""

    def __init__(self, response: Response[Any]) -> None:
        problem = response.parsed if isinstance(response.parsed, Problem) else None
        self.status: int = response.status_code
        self.problem: Problem | None = problem  # None only for a status the document does not list
        self.code: str = problem.code if problem else ""
        self.detail: str = problem.detail if problem else response.content.decode(errors="replace")
        self.errors: dict[str, list[str]] = {}
        if problem and not isinstance(problem.errors, Unset):
            self.errors = problem.errors.additional_properties
        self.request_id: str = problem.request_id if problem else ""
        super().__init__(f"{self.status} {self.code}: {self.detail}")


@dataclass
class Answer(Generic[T]):
    """A success: its status, headers (ETag, Location, Link...) and typed body."""

    status: int
    headers: MutableMapping[str, str]
    parsed: T | None  # None for a 204

    @property
    def value(self) -> T:
        if self.parsed is None:
            raise LookupError(f"a {self.status} answer has no body")
        return self.parsed


def retryable(response: httpx.Response) -> bool:
    """Whether sending the request again is safe and may succeed: never a write that may have landed."""
    if response.status_code == 429:
        return True
    if response.status_code != 503:
        return False
    return response.request.method in ("GET", "HEAD") or problem_code(response) == "hashing_busy"


def problem_code(response: httpx.Response) -> str:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return ""
    body = response.json()
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def retry_after(headers: MutableMapping[str, str], default: float = 1.0) -> float:
    """Seconds to wait before retrying: Retry-After in seconds or as an HTTP date."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: float  # time.monotonic() when the access token runs out

    @classmethod
    def from_token(cls, token: Token | LoginToken) -> Self:
        return cls(token.access_token, token.refresh_token, time.monotonic() + token.expires_in)


class ApiClient:
    """One user's session with the API."""

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.Client | None = None,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        refresh_margin: float = 30.0,
    ) -> None:
        # The server's origin: the generated paths carry /api/v1, so a URL ending in it works too.
        self.base_url = base_url.rstrip("/").removesuffix("/api/v1")
        self.http = http or httpx.Client(timeout=10.0)
        self.http.base_url = httpx.URL(self.base_url)
        hooks = self.http.event_hooks
        self.http.event_hooks = {**hooks, "response": [*hooks.get("response", []), self._saw]}
        self._last: httpx.Response | None = None  # the last answer on the wire, for its request's method
        # The generated functions send through self.http; _send sets its Authorization header per call.
        self._client = AuthenticatedClient(base_url=self.base_url, token="").set_httpx_client(self.http)
        self.max_retries = max_retries  # retries per request (see retryable)
        self.max_retry_wait = max_retry_wait  # a longer Retry-After is given back to the caller at once
        self.refresh_margin = refresh_margin  # refresh this many seconds before the access token expires
        self.tokens: Tokens | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    # --- the account --------------------------------------------------------------------------

    def register(self, email: str, password: str, display_name: str) -> User | None:
        """Create an account; the new user, or None from a service that answers every registration 202
        without saying whether the address already had an account (REGISTRATION_ENUMERATION_SAFE)."""
        body = Register(email, password, display_name)
        created = self._answer(self._send(lambda client: register.sync_detailed(client=client, body=body))).value
        return created if isinstance(created, User) else None

    def login(self, email: str, password: str) -> None:
        body = Login(email, password)
        token = self._answer(self._send(lambda client: login.sync_detailed(client=client, body=body))).value
        self.tokens = Tokens.from_token(token)

    def refresh(self) -> None:
        """Swap the refresh token for a new pair. Each refresh token works once."""
        if self.tokens is None:
            raise RuntimeError("not logged in")
        response = self._send(refresh_tokens.sync_detailed, token=self.tokens.refresh_token)
        if not isinstance(response.parsed, Token):
            self.tokens = None  # the session is over: expired, logged out, or a reused token
            raise ApiError(response)
        self.tokens = Tokens.from_token(response.parsed)

    def logout(self) -> None:
        """End the session on the server; its access and refresh tokens stop working."""
        try:
            self.call(logout.sync_detailed)
        finally:
            self.tokens = None

    # --- calls --------------------------------------------------------------------------------

    def call(self, operation: Operation[T]) -> Answer[T]:
        """A generated operation, authorised; raises ApiError on a 4xx or 5xx answer."""
        if self.tokens and time.monotonic() >= self.tokens.expires_at - self.refresh_margin:
            self.refresh()
        response = self._send(operation, token=self._access_token())
        if self.tokens and response.status_code == 401 and self._code(response) == "token_expired":
            self.refresh()  # the server's clock decides, not ours
            response = self._send(operation, token=self._access_token())
        return self._answer(response)

    # --- plumbing -----------------------------------------------------------------------------

    def _access_token(self) -> str | None:
        return self.tokens.access_token if self.tokens else None

    def _saw(self, response: httpx.Response) -> None:
        self._last = response

    @staticmethod
    def _code(response: Response[Any]) -> str:
        return response.parsed.code if isinstance(response.parsed, Problem) else ""

    def _send(self, operation: Operation[T], *, token: str | None = None) -> Response[T | Problem]:
        """Send once, then again after each retryable answer as Retry-After says, at most max_retries times."""
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        else:
            self.http.headers.pop("Authorization", None)
        retries = 0
        while True:
            response = operation(client=self._client)
            if self._last is None or not retryable(self._last) or retries >= self.max_retries:
                return response
            wait = retry_after(response.headers)
            if wait > self.max_retry_wait:
                return response
            time.sleep(wait)
            retries += 1

    @staticmethod
    def _answer(response: Response[T | Problem]) -> Answer[T]:
        parsed = response.parsed
        if response.status_code >= 400 or isinstance(parsed, Problem):
            raise ApiError(response)
        return Answer(response.status_code, response.headers, parsed)


def main(base_url: str) -> None:
    """Walk through a session: register, log in, who am I, refresh, log out."""
    email, password = f"demo-{int(time.time())}@example.com", "tulip ledger ferry quartz"
    with ApiClient(base_url) as api:
        user = api.register(email, password, "Demo")
        print("registered:", user.id if user else "202, see the mail")
        api.login(email, password)
        print("me:", api.call(get_me.sync_detailed).value.email)
        api.refresh()
        print("me after a refresh:", api.call(get_me.sync_detailed).value.email)
        api.logout()
        print("logged out")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
