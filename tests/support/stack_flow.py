"""The user's request flow against a running stack, through nginx; stdlib only.

Shared by tests/system/test_stack.py (loopback processes) and scripts/compose-smoke (the real compose stack):
    python3 -m tests.support.stack_flow full|login BASE_URL EMAIL
"""

import json
import sys
import urllib.error
import urllib.request
from typing import Any

PASSWORD = "tulip ledger ferry quartz"


class Response:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    method: str, url: str, body: Any = None, token: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """One request; HTTP errors are answers to look at, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  (the stack's own http:// URL)
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers, error.read())


def expect(response: Response, status: int, what: str) -> Response:
    if response.status != status:
        raise AssertionError(f"{what}: expected {status}, got {response.status}: {response.body[:500]!r}")
    return response


def login(base: str, email: str) -> dict[str, Any]:
    """Log in and call /users/me: the account (and so the database) is there."""
    api = base + "/api/v1"
    tokens: dict[str, Any] = expect(
        call("POST", f"{api}/auth/login", {"email": email, "password": PASSWORD}), 200, "login"
    ).json()
    me = expect(call("GET", f"{api}/users/me", token=tokens["access_token"]), 200, "users/me").json()
    assert me["email"] == email, me
    return tokens


def full(base: str, email: str) -> None:
    """Swagger UI and both documents, then register -> login -> me -> refresh -> logout."""
    api = base + "/api/v1"
    page = expect(call("GET", f"{base}/swagger"), 200, "Swagger UI").body.decode()
    assert "swagger-ui" in page, page[:500]
    expect(call("GET", f"{base}/swagger/ui/swagger-ui-bundle.js"), 200, "Swagger UI bundle")
    document = expect(call("GET", f"{api}/openapi.json"), 200, "OpenAPI document").json()
    assert document["openapi"] == "3.1.0" and "/api/v1/auth/login" in document["paths"], sorted(document)
    spec = expect(call("GET", f"{api}/swagger.json"), 200, "Swagger 2.0 document").json()
    assert spec["swagger"] == "2.0" and "/auth/login" in spec["paths"], sorted(spec)

    account = {"email": email, "password": PASSWORD, "display_name": "Smoke"}
    expect(call("POST", f"{api}/auth/register", account), 201, "register")
    tokens = login(base, email)

    fresh = expect(call("POST", f"{api}/auth/refresh", token=tokens["refresh_token"]), 200, "refresh").json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    expect(call("GET", f"{api}/users/me", token=fresh["access_token"]), 200, "users/me with the refreshed token")

    expect(call("POST", f"{api}/auth/logout", token=fresh["access_token"]), 204, "logout")
    gone = expect(call("GET", f"{api}/users/me", token=fresh["access_token"]), 401, "users/me after logout")
    assert gone.headers["Content-Type"] == "application/problem+json"


def main(argv: list[str]) -> int:
    step, base, email = argv
    {"full": full, "login": login}[step](base.rstrip("/"), email)
    print(f"stack flow '{step}' passed against {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
