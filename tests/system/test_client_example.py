"""examples/client.py against the live app over real HTTP: the whole session, refreshing by itself,
and waiting out the app's real rate limit."""

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from api_client.api.users import get_me, update_me
from api_client.models import ProfileUpdatePatch

from examples.client import ApiClient, ApiError
from tests.support.app import DATABASES, PASSWORD, held
from tests.support.live import migrated_app, serve

RENAMED = ProfileUpdatePatch(display_name="Renamed")


@pytest.fixture(scope="module", params=DATABASES)
def base_url(request: pytest.FixtureRequest, new_database: Callable[[str], str]) -> Iterator[str]:
    """The API over HTTP, with two-second access tokens so that expiry can be waited for."""
    database_url = new_database(request.param)
    with migrated_app(database_url, TESTING=False, JWT_ACCESS_TOKEN_MINUTES=2 / 60) as app, serve(app) as url:
        yield url + "/api/v1"


@pytest.fixture(scope="module")
def limited_url(new_database: Callable[[str], str]) -> Iterator[str]:
    """The API with a per-caller quota of 2 requests per 2 seconds (the window opens at the first)."""
    database_url = new_database("sqlite")
    with migrated_app(database_url, TESTING=False, RATELIMIT_PER_CALLER="2 per 2 seconds") as app, serve(app) as url:
        yield url + "/api/v1"


class Recorder:
    """What the client sent and got, as (method, path, status) seen on the wire."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, response: httpx.Response) -> None:
        self.calls.append(
            (response.request.method, response.request.url.path.removeprefix("/api/v1"), response.status_code)
        )


@pytest.fixture
def wire() -> Recorder:
    return Recorder()


@pytest.fixture
def api(base_url: str, wire: Recorder) -> Iterator[ApiClient]:
    with ApiClient(base_url, http=httpx.Client(event_hooks={"response": [wire]}), refresh_margin=0) as client:
        yield client


def new_email() -> str:
    return f"client-{uuid.uuid4().hex[:8]}@example.com"


def logged_in(api: ApiClient) -> str:
    email = new_email()
    api.register(email, PASSWORD, "Client")
    api.login(email, PASSWORD)
    return email


def wait_for_expiry() -> None:
    # exp is in whole seconds, so a two-second token lives between one and two seconds: a fresh one
    # always outlives the retry that follows a refresh (one second could be over in a millisecond).
    time.sleep(2.1)


def test_register_login_me_logout(api: ApiClient, base_url: str) -> None:
    email = new_email()
    user = api.register(email, PASSWORD, "Client")
    assert user.email == email and "password" not in user.to_dict()
    api.login(email, PASSWORD)
    me = api.call(get_me.sync_detailed)
    assert me.value.id == user.id
    etag = me.headers["ETag"]
    renamed = api.call(lambda client: update_me.sync_detailed(client=client, body=RENAMED, if_match=etag))
    assert renamed.value.display_name == "Renamed"
    with pytest.raises(ApiError) as stale:  # the caller's If-Match reaches the server
        api.call(lambda client: update_me.sync_detailed(client=client, body=RENAMED, if_match=etag))
    assert stale.value.status == 412
    assert api.tokens is not None
    old_access = api.tokens.access_token
    api.logout()
    assert api.tokens is None
    with pytest.raises(ApiError) as error:
        api.call(get_me.sync_detailed)
    assert (error.value.status, error.value.code) == (401, "missing_token")
    revoked = httpx.get(base_url + "/users/me", headers={"Authorization": f"Bearer {old_access}"})
    assert revoked.status_code == 401


def test_errors_come_back_as_problem_details(api: ApiClient) -> None:
    email = logged_in(api)
    with pytest.raises(ApiError) as taken:
        api.register(email, PASSWORD, "Again")
    assert (taken.value.status, taken.value.code) == (409, "conflict")
    assert taken.value.errors == {"email": ["Already taken."]} and taken.value.request_id
    with pytest.raises(ApiError) as wrong:
        api.login(email, "not the password at all, but long enough")
    assert (wrong.value.status, wrong.value.code) == (401, "invalid_credentials")


def test_an_expired_access_token_is_refreshed_before_the_call(api: ApiClient, wire: Recorder) -> None:
    email = logged_in(api)
    assert api.tokens is not None
    first_refresh_token = api.tokens.refresh_token
    wait_for_expiry()
    assert api.call(get_me.sync_detailed).value.email == email
    assert wire.calls[-2:] == [("POST", "/auth/refresh", 200), ("GET", "/users/me", 200)]
    assert api.tokens.refresh_token != first_refresh_token  # rotated, and the client kept the new one
    wait_for_expiry()
    assert api.call(get_me.sync_detailed).value.email == email  # the rotated refresh token works too


def test_a_401_token_expired_from_the_server_refreshes_and_retries(api: ApiClient, wire: Recorder) -> None:
    email = logged_in(api)
    assert api.tokens is not None
    api.tokens.expires_at = math.inf  # the client believes its token is good; the server disagrees
    wait_for_expiry()
    assert api.call(get_me.sync_detailed).value.email == email
    assert wire.calls[-3:] == [("GET", "/users/me", 401), ("POST", "/auth/refresh", 200), ("GET", "/users/me", 200)]


def test_a_session_that_ended_elsewhere_surfaces_as_an_error(api: ApiClient, base_url: str) -> None:
    logged_in(api)
    assert api.tokens is not None
    # Someone else spends this session's refresh token, twice: the server ends the session on reuse (the
    # client's token is then two rotations old, no longer the one a grace window forgives).
    stolen = httpx.post(base_url + "/auth/refresh", headers={"Authorization": f"Bearer {api.tokens.refresh_token}"})
    assert stolen.status_code == 200
    again = httpx.post(
        base_url + "/auth/refresh", headers={"Authorization": f"Bearer {stolen.json()['refresh_token']}"}
    )
    assert again.status_code == 200
    wait_for_expiry()
    with pytest.raises(ApiError) as error:
        api.call(get_me.sync_detailed)
    assert (error.value.status, error.value.code) == (401, "refresh_token_reused")
    assert api.tokens is None  # log in again


def test_a_429_is_retried_after_the_wait_the_server_asks_for(limited_url: str, wire: Recorder) -> None:
    hooks = {"response": [wire]}
    with ApiClient(limited_url, http=httpx.Client(event_hooks=hooks), max_retries=1) as api:
        logged_in(api)
        assert api.call(get_me.sync_detailed).status == api.call(get_me.sync_detailed).status == 200
        started = time.monotonic()
        assert api.call(get_me.sync_detailed).status == 200  # over the quota: 429, wait, then through
        assert time.monotonic() - started >= 1
        assert wire.calls[-2:] == [("GET", "/users/me", 429), ("GET", "/users/me", 200)]
        api.call(get_me.sync_detailed)  # the quota's second request in the new window
        api.max_retries = 0
        with pytest.raises(ApiError) as error:  # out of retries: the 429 comes back at once
            api.call(get_me.sync_detailed)
        assert (error.value.status, error.value.code) == (429, "too_many_requests")


def test_a_login_refused_for_want_of_a_hashing_slot_is_retried(
    new_database: Callable[[str], str], tmp_path: Path, wire: Recorder
) -> None:
    """503 hashing_busy means nothing happened, so the client sends the login again after Retry-After."""
    slots = tmp_path / "slots"
    bounded = {"TESTING": False, "HASH_CONCURRENCY": 1, "HASH_SLOTS_DIR": str(slots)}
    taken = threading.Event()

    def busy_for_a_second() -> None:  # another worker, hashing
        with held(slots):
            taken.set()
            time.sleep(1)

    hooks = {"response": [wire]}
    with (
        migrated_app(new_database("sqlite"), **bounded) as app,
        serve(app) as url,
        ApiClient(url + "/api/v1", http=httpx.Client(event_hooks=hooks)) as api,
    ):
        email = new_email()
        api.register(email, PASSWORD, "Client")
        other = threading.Thread(target=busy_for_a_second)
        other.start()
        taken.wait()
        api.login(email, PASSWORD)
        other.join()
    assert wire.calls[-2:] == [("POST", "/auth/login", 503), ("POST", "/auth/login", 200)]
