"""A small typed client for the API, as a JWT-authenticated user would write it (httpx).

    with ApiClient("http://127.0.0.1:8000/api/v1") as api:
        api.register("ada@example.com", "correct horse battery staple", "Ada")
        api.login("ada@example.com", "correct horse battery staple")
        print(api.get("/users/me").json())
        api.logout()

It refreshes the access token by itself, before it expires and when the server answers
401 token_expired, and retries after the Retry-After the server asks for: a 429, a 503 to a
read, and a 503 hashing_busy (a login refused before anything happened). Refresh
tokens are single use, so share one ApiClient per session and do not use it from two threads
at once: two refreshes racing with one token count as reuse and end the session.

Run it against `make run`: python examples/client.py [base URL]
"""

import email.utils
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import httpx


class ApiError(Exception):
    """A 4xx or 5xx answer, with the fields of its application/problem+json body."""

    def __init__(self, response: httpx.Response) -> None:
        body = problem_body(response)
        self.status: int = response.status_code
        self.code: str = str(body.get("code", ""))
        self.detail: str = str(body.get("detail", response.reason_phrase))
        self.errors: dict[str, list[str]] = body.get("errors") or {}
        self.request_id: str = str(body.get("request_id", ""))
        super().__init__(f"{self.status} {self.code}: {self.detail}")


def problem_body(response: httpx.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        body = response.json()
        if isinstance(body, dict):
            return body
    return {}


def retryable(response: httpx.Response) -> bool:
    """Whether sending the request again is safe and may succeed: never a write that may have landed."""
    if response.status_code == 429:
        return True
    if response.status_code != 503:
        return False
    return response.request.method in ("GET", "HEAD") or problem_body(response).get("code") == "hashing_busy"


def retry_after(response: httpx.Response, default: float = 1.0) -> float:
    """Seconds to wait before retrying: Retry-After in seconds or as an HTTP date."""
    value = response.headers.get("retry-after", "").strip()
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
    def from_response(cls, body: dict[str, Any]) -> Self:
        return cls(body["access_token"], body["refresh_token"], time.monotonic() + body["expires_in"])


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
        self.base_url = base_url.rstrip("/")
        self.http = http or httpx.Client(timeout=10.0)
        self.max_retries = max_retries  # retries per request (see retryable)
        self.max_retry_wait = max_retry_wait  # a longer Retry-After is given back to the caller at once
        self.refresh_margin = refresh_margin  # refresh this many seconds before the access token expires
        self.tokens: Tokens | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    # --- the account --------------------------------------------------------------------------

    def register(self, email: str, password: str, display_name: str) -> dict[str, Any]:
        """Create an account; returns the new user."""
        body = {"email": email, "password": password, "display_name": display_name}
        result: dict[str, Any] = self._check(self._send("POST", "/auth/register", json=body)).json()
        return result

    def login(self, email: str, password: str) -> None:
        response = self._check(self._send("POST", "/auth/login", json={"email": email, "password": password}))
        self.tokens = Tokens.from_response(response.json())

    def refresh(self) -> None:
        """Swap the refresh token for a new pair. Each refresh token works once."""
        if self.tokens is None:
            raise RuntimeError("not logged in")
        response = self._send("POST", "/auth/refresh", token=self.tokens.refresh_token)
        if response.is_error:
            self.tokens = None  # the session is over: expired, logged out, or a reused token
            raise ApiError(response)
        self.tokens = Tokens.from_response(response.json())

    def logout(self) -> None:
        """End the session on the server; its access and refresh tokens stop working."""
        try:
            self.request("POST", "/auth/logout")
        finally:
            self.tokens = None

    # --- calls --------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authorised call; raises ApiError on a 4xx or 5xx answer."""
        if self.tokens and time.monotonic() >= self.tokens.expires_at - self.refresh_margin:
            self.refresh()
        response = self._send(method, path, token=self._access_token(), **kwargs)
        if self.tokens and response.status_code == 401 and problem_body(response).get("code") == "token_expired":
            self.refresh()  # the server's clock decides, not ours
            response = self._send(method, path, token=self._access_token(), **kwargs)
        return self._check(response)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    # --- plumbing -----------------------------------------------------------------------------

    def _access_token(self) -> str | None:
        return self.tokens.access_token if self.tokens else None

    def _send(
        self, method: str, path: str, *, token: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send once, then again after each retryable answer as Retry-After says, at most max_retries times."""
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        retries = 0
        while True:
            response = self.http.request(method, self.base_url + path, headers=headers, **kwargs)
            if not retryable(response) or retries >= self.max_retries:
                return response
            wait = retry_after(response)
            if wait > self.max_retry_wait:
                return response
            time.sleep(wait)
            retries += 1

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.is_error:
            raise ApiError(response)
        return response


def main(base_url: str) -> None:
    """Walk through a session: register, log in, who am I, refresh, log out."""
    email, password = f"demo-{int(time.time())}@example.com", "correct horse battery staple"
    with ApiClient(base_url) as api:
        print("registered:", api.register(email, password, "Demo")["id"])
        api.login(email, password)
        print("me:", api.get("/users/me").json()["email"])
        api.refresh()
        print("me after a refresh:", api.get("/users/me").json()["email"])
        api.logout()
        print("logged out")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/api/v1")
