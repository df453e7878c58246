"""A session with the generated Python client (clients/python) against a running server, step by step.

    python clients/journey.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD

BASE_URL is the server's origin: the document's paths carry /api/v1. Each step prints
`operationId status`. clients/typescript/journey.ts walks the same steps with the TypeScript client;
tests/system/test_clients.py runs both against a live app whose login limit is low and compares what
they print. `mypy --strict` checks this module: what a response must carry is read as typed, without
casts; a union (the answer or a Problem) is told apart with isinstance.
"""

import secrets
import sys
import time
import uuid
from typing import Any, TypeVar

from api_client import AuthenticatedClient, Client
from api_client.api.auth import login, logout, refresh_tokens, register
from api_client.api.sessions import list_my_sessions
from api_client.api.users import create_user, delete_user, get_me, get_user, list_users, update_me
from api_client.models import Login, LoginToken, Problem, ProfileUpdatePatch, Register, Token, User, UserCreate
from api_client.types import Response

T = TypeVar("T")
PASSWORD = secrets.token_urlsafe(18)  # for the accounts the journey makes
LOGINS_BEFORE_429 = 50  # a bound: the test's app allows far fewer per window


class JourneyError(Exception):
    """A step got an answer other than the one it expects."""


def answer(step: str, response: Response[T | Problem], status: int) -> T:
    """The parsed body of the expected success, or JourneyError with what came instead."""
    parsed = response.parsed
    if response.status_code != status or isinstance(parsed, Problem) or parsed is None:
        raise JourneyError(f"{step}: expected {status}, got {response.status_code}: {response.content!r}")
    print(step, status)
    return parsed


def problem(step: str, response: Response[T | Problem], status: int) -> Problem:
    """The problem+json body of an expected error status."""
    parsed = response.parsed
    if response.status_code != status or not isinstance(parsed, Problem):
        raise JourneyError(f"{step}: expected a {status} problem, got {response.status_code}: {response.content!r}")
    print(step, status)
    return parsed


def no_content(step: str, response: Response[Any | Problem]) -> None:
    if response.status_code != 204:
        raise JourneyError(f"{step}: expected 204, got {response.status_code}: {response.content!r}")
    print(step, 204)


def token_pair(tokens: Token | LoginToken) -> tuple[str, str]:
    """(access, refresh): both typed as always present, so no check is needed."""
    return tokens.access_token, tokens.refresh_token


def user_journey(base_url: str) -> None:
    """Register, log in, read and update the profile (If-Match), refresh, list sessions, log out."""
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    with Client(base_url=base_url) as anonymous:
        registered = register.sync_detailed(client=anonymous, body=Register(email, PASSWORD, "Py"))
        user = registered.parsed  # Accepted (202) only with REGISTRATION_ENUMERATION_SAFE=true
        if registered.status_code != 201 or not isinstance(user, User):
            raise JourneyError(f"register: expected 201, got {registered.status_code}: {registered.content!r}")
        print("register", 201)
        assert user.email == email and user.role == "user" and user.email_verified_at is None
        access, refresh = token_pair(
            answer("login", login.sync_detailed(client=anonymous, body=Login(email, PASSWORD)), 200)
        )

    with AuthenticatedClient(base_url=base_url, token=access) as me:
        read = get_me.sync_detailed(client=me)
        assert answer("getMe", read, 200).id == user.id
        etag = read.headers["ETag"]
        renamed = update_me.sync_detailed(client=me, body=ProfileUpdatePatch(display_name="Renamed"), if_match=etag)
        assert answer("updateMe", renamed, 200).display_name == "Renamed"
        assert renamed.headers["ETag"] != etag
        stale = problem(
            "updateMe",
            update_me.sync_detailed(client=me, body=ProfileUpdatePatch(display_name="Lost"), if_match=etag),
            412,
        )
        assert (stale.status, stale.code) == (412, "precondition_failed") and stale.request_id and stale.detail

    # The refresh token authenticates POST /auth/refresh only: a client of its own carries it.
    with AuthenticatedClient(base_url=base_url, token=refresh) as refresher:
        access, refresh = token_pair(answer("refreshTokens", refresh_tokens.sync_detailed(client=refresher), 200))

    with AuthenticatedClient(base_url=base_url, token=access) as me:
        sessions = answer("listMySessions", list_my_sessions.sync_detailed(client=me), 200)
        assert [session.current for session in sessions.items] == [True]
        no_content("logout", logout.sync_detailed(client=me))
        ended = problem("getMe", get_me.sync_detailed(client=me), 401)
        assert ended.code == "invalid_token", ended


def admin_journey(base_url: str, admin_email: str, admin_password: str) -> None:
    """List users a page at a time, create one and delete it; then be refused a login and wait as told."""
    with Client(base_url=base_url) as anonymous:
        access, _ = token_pair(
            answer("login", login.sync_detailed(client=anonymous, body=Login(admin_email, admin_password)), 200)
        )

    with AuthenticatedClient(base_url=base_url, token=access) as admin:
        first = answer("listUsers", list_users.sync_detailed(client=admin, role="user", limit=1), 200)
        assert len(first.items) == 1 and first.items[0].role == "user" and first.next_cursor is not None
        second = answer(
            "listUsers", list_users.sync_detailed(client=admin, role="user", limit=1, cursor=first.next_cursor), 200
        )
        assert len(second.items) == 1 and second.items[0].id != first.items[0].id

        body = UserCreate(f"created-{uuid.uuid4().hex[:8]}@example.com", PASSWORD, "Created", role="user")
        created = answer("createUser", create_user.sync_detailed(client=admin, body=body), 201)
        no_content("deleteUser", delete_user.sync_detailed(created.id, client=admin))
        gone = problem("getUser", get_user.sync_detailed(created.id, client=admin), 404)
        assert gone.code == "not_found"

    with Client(base_url=base_url) as anonymous:
        credentials = Login(admin_email, admin_password)
        for _ in range(LOGINS_BEFORE_429):
            refused = login.sync_detailed(client=anonymous, body=credentials)
            if refused.status_code == 429:
                break
        limited = problem("login", refused, 429)
        assert limited.code == "too_many_requests"
        time.sleep(int(refused.headers["Retry-After"]))  # whole seconds, rounded up: then it goes through
        answer("login", login.sync_detailed(client=anonymous, body=credentials), 200)


def main(base_url: str, admin_email: str, admin_password: str) -> None:
    user_journey(base_url)
    admin_journey(base_url, admin_email, admin_password)
    print("done")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} BASE_URL ADMIN_EMAIL ADMIN_PASSWORD")
    main(*sys.argv[1:])
