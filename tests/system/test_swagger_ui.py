"""Swagger UI in a real headless Chromium on the OpenAPI 3.1 document: offline assets, Authorize with
or without "Bearer ", a login made in the UI authorising the calls that follow, the refresh
included (app/static/swagger-auth.js), and tokens kept in memory unless DOCS_PERSIST_AUTH is on."""

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import ConsoleMessage, Page, Request, sync_playwright

from tests.support.app import PASSWORD, make_user
from tests.support.live import migrated_app, serve

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every host name fails to resolve, so the page works only if all it needs is on 127.0.0.1.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
LOGIN, ME, REFRESH = "#operations-auth-login", "#operations-users-getMe", "#operations-auth-refreshTokens"


@dataclass
class Browser:
    """A page in a fresh browser context, and what it did: every request, every console error."""

    page: Page
    base_url: str
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open_swagger(self) -> None:
        self.page.goto(self.base_url + "/swagger")
        self.page.locator(LOGIN).wait_for()

    def execute(self, operation: str, body: dict[str, str] | None = None) -> str:
        """Try it out -> Execute on one operation; return the status code the UI shows."""
        op = self.page.locator(operation)
        if not op.locator(".opblock-body").count():
            op.locator(".opblock-summary").click()
        op.locator(".opblock-body .try-out").wait_for()
        if op.get_by_role("button", name="Try it out").count():
            op.get_by_role("button", name="Try it out").click()
        if op.locator(".btn-clear").count():
            op.locator(".btn-clear").click()  # drop the previous response, so we wait for the new one
            op.locator(".live-responses-table").wait_for(state="detached")
        if body is not None:
            op.locator("textarea.body-param__text").fill(json.dumps(body))
        op.get_by_role("button", name="Execute").click()
        return op.locator(".live-responses-table tbody .response-col_status").first.inner_text().strip()

    def response_body(self, operation: str) -> str:
        return self.page.locator(
            f"{operation} .live-responses-table tbody .response-col_description pre"
        ).first.inner_text()

    def authorize(self, value: str) -> None:
        """Paste a value into the Authorize dialog's access-token scheme, as a person would."""
        self.page.locator(".auth-wrapper .authorize").click()
        scheme = self.page.locator(".modal-ux .auth-container", has_text="bearerAuth")
        scheme.locator("input").fill(value)
        scheme.locator("button.modal-btn.auth.authorize").click()
        self.page.locator(".modal-ux button.btn-done").first.click()

    def sent_authorization(self, path: str) -> list[str | None]:
        return [r.headers.get("authorization") for r in self.requests if urlsplit(r.url).path == path]

    def assert_all_local(self) -> None:
        outside = [r.url for r in self.requests if urlsplit(r.url).hostname != "127.0.0.1"]
        assert not outside, f"requests left the loopback: {outside}"


def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}; the Swagger UI test needs a real browser. Install it "
            "(Debian: apt-get install chromium) or set CHROMIUM to a Chromium or Chrome binary.",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def live(new_database: Callable[[str], str]) -> Iterator[tuple[Flask, str]]:
    """The app on SQLite behind a real HTTP server (the UI, not the database, is under test here)."""
    with migrated_app(new_database("sqlite"), TESTING=False) as app, serve(app) as base_url:
        yield app, base_url


@pytest.fixture(scope="module")
def chromium_process() -> Iterator[PlaywrightBrowser]:
    """One Chromium for the module; Playwright starts it with an empty temporary --user-data-dir."""
    executable = chromium()
    with sync_playwright() as playwright:
        process = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield process
        process.close()


@pytest.fixture
def browser(live: tuple[Flask, str], chromium_process: PlaywrightBrowser) -> Iterator[Browser]:
    """A fresh browser context per test: no cookies, storage or saved authorisation carried over."""
    context = chromium_process.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    result = Browser(page, live[1])
    context.on("request", lambda r: result.requests.append(r))
    page.on("pageerror", lambda e: result.errors.append(f"uncaught: {e}"))
    page.on("console", lambda m: record_console_error(result.errors, m))
    yield result
    context.close()


def record_console_error(errors: list[str], message: ConsoleMessage) -> None:
    # Chromium logs every 4xx as "Failed to load resource"; the tests cause some on purpose.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(message.text)


@contextmanager
def screenshot_on_failure(browser: Browser, tmp_path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException as e:
        path = tmp_path / "swagger-ui-failure.png"
        browser.page.screenshot(path=path, full_page=True)
        e.add_note(f"screenshot of the page: {path}")
        raise


def test_swagger_ui_renders_offline_from_local_assets(browser: Browser, tmp_path: Path) -> None:
    with screenshot_on_failure(browser, tmp_path):
        browser.open_swagger()
        assert browser.page.locator(".info .title").inner_text().startswith(browser.page.title())
        assert browser.page.locator(".opblock").count() >= 10
        assert browser.page.locator(".auth-wrapper .authorize").is_visible()
        browser.assert_all_local()
        assert not browser.errors


def test_a_login_made_in_the_ui_authorises_the_calls_that_follow(
    live: tuple[Flask, str], browser: Browser, tmp_path: Path
) -> None:
    user = make_user(live[0])
    with screenshot_on_failure(browser, tmp_path):
        browser.open_swagger()
        assert browser.execute(ME) == "401"
        assert browser.execute(LOGIN, {"email": user.email, "password": PASSWORD}) == "200"
        assert "locked" in (browser.page.locator(".auth-wrapper .authorize").get_attribute("class") or "")
        assert browser.execute(ME) == "200"
        assert user.email in browser.response_body(ME)
        # The login also authorised the refresh scheme: a refresh works, and its new pair is used.
        assert browser.execute(REFRESH) == "200"
        assert browser.execute(ME) == "200"
        refreshed = browser.sent_authorization("/api/v1/auth/refresh")
        assert len(refreshed) == 1 and refreshed[0] != browser.sent_authorization("/api/v1/users/me")[-1]
        sent = browser.sent_authorization("/api/v1/users/me")
        assert sent[0] is None and all(h and h.startswith("Bearer ey") for h in sent[1:]), sent
        # The tokens lived in the page's memory only: nothing in storage, and a reload forgets them.
        assert "ey" not in browser.page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
        browser.page.reload()
        browser.page.locator(LOGIN).wait_for()
        assert browser.execute(ME) == "401"
        browser.assert_all_local()
        assert not browser.errors


def test_docs_persist_auth_keeps_a_login_across_reloads(
    new_database: Callable[[str], str], chromium_process: PlaywrightBrowser, tmp_path: Path
) -> None:
    with (
        migrated_app(new_database("sqlite"), TESTING=False, DOCS_PERSIST_AUTH=True) as app,
        serve(app) as base_url,
    ):
        user = make_user(app)
        context = chromium_process.new_context()
        context.set_default_timeout(15_000)
        browser = Browser(context.new_page(), base_url)
        try:
            with screenshot_on_failure(browser, tmp_path):
                browser.open_swagger()
                assert browser.execute(LOGIN, {"email": user.email, "password": PASSWORD}) == "200"
                browser.page.reload()
                browser.page.locator(LOGIN).wait_for()
                assert browser.execute(ME) == "200"
        finally:
            context.close()


@pytest.mark.parametrize("prefix", ["", "Bearer "], ids=["raw token", "with Bearer prefix"])
def test_the_authorize_dialog_takes_a_token_with_or_without_bearer(
    live: tuple[Flask, str], browser: Browser, tmp_path: Path, prefix: str
) -> None:
    user = make_user(live[0])
    login = live[0].test_client().post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    token = login.get_json()["access_token"]
    with screenshot_on_failure(browser, tmp_path):
        browser.open_swagger()
        browser.authorize(prefix + token)
        assert browser.execute(ME) == "200"
        assert user.email in browser.response_body(ME)
        assert browser.sent_authorization("/api/v1/users/me") == [f"Bearer {token}"]
        browser.assert_all_local()
        assert not browser.errors
