"""Reusable fixtures for tests in real headless Chromium (the system's, through Playwright).

- ``browser``: one Chromium for the session (skips the test when Chromium is missing).
- ``browser_page``: a fresh context and page at 1280×720 whose relative URLs go to
  pytest-django's ``live_server``.
- ``browser_login``: ``browser_login(page, username, password)`` logs in through /login/.
- ``browser_traffic``: ``browser_traffic(page)`` starts recording every response of the page
  (URL, status, content type, body) into the list it returns.

Mark such tests ``@pytest.mark.browser``. Never run ``playwright install``: the system's Chromium
is used (``CHROMIUM`` overrides its path).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in the test thread; Django then refuses ORM calls
# from that thread ("async context") unless told that this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 720}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_page(browser, live_server) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # tests may assert that the page raised nothing
    try:
        yield page
    finally:
        context.close()


def login(page: Any, username: str, password: str) -> None:
    """Log in through the real login form and wait for the redirect."""
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/login/" in page.url:
        raise AssertionError(f"login as {username!r} failed")


@pytest.fixture
def browser_login() -> Callable[[Any, str, str], None]:
    return login


def record_traffic(page: Any) -> list[dict[str, Any]]:
    """Record every response of ``page`` from now on: url, status, content_type, body (bytes)."""
    records: list[dict[str, Any]] = []

    def on_response(response) -> None:
        entry = {
            "url": response.url,
            "status": response.status,
            "content_type": response.headers.get("content-type", ""),
            "body": b"",
        }
        with contextlib.suppress(Exception):  # redirects and aborted media requests have no body
            entry["body"] = response.body()
        records.append(entry)

    page.on("response", on_response)
    return records


@pytest.fixture
def browser_traffic() -> Callable[[Any], list[dict[str, Any]]]:
    return record_traffic
