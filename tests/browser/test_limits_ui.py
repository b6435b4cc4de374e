"""Limits in Chromium: the low-memory banner, a refused session and a refused connection as toasts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import test_browser
from tests.browser.test_browser import indicator, open_terminal, type_and_see
from tests.conftest import Stack
from tests.e2e.conftest import RunningApp, start_app, stop_app
from tests.fake_memory import FakeContainer
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser  # the same Chromium fixture


@pytest.fixture
def container(stack: Stack) -> FakeContainer:
    return FakeContainer(stack.root / "fakeroot", limit_mib=6144, available_mib=300)


@pytest.fixture
def limited_app(stack: Stack, container: FakeContainer) -> Iterator[RunningApp]:
    stack.env.update(
        CODING_AGENTS_MAX_SESSIONS="1",
        CODING_AGENTS_MAX_CONNECTIONS_PER_SESSION="1",
        CODING_AGENTS_MEMORY_ROOT=str(container.root),
    )
    app = start_app(stack)
    yield app
    stop_app(app)


def toast_text(page: Page) -> str:
    toast = page.locator("#toast")
    return toast.inner_text() if toast.is_visible() else ""


def refused_toast(page: Page, expected: str) -> Callable[[], bool]:
    return lambda: expected in toast_text(page)


def test_limits_are_said_on_the_page(
    browser: Browser, limited_app: RunningApp, container: FakeContainer
) -> None:
    page = open_terminal(browser, limited_app)
    banner = page.locator("#memory-banner")
    wait_until(banner.is_visible, timeout=15, what="low-memory banner")
    assert banner.inner_text().startswith("Memory is low: 300 MiB of 6144 MiB free (4.9%).")

    # The shells' Node processes are capped from the container's limit (a quarter of 6 GiB).
    type_and_see(page, "echo heap=$NODE_OPTIONS", "heap=--max-old-space-size=1536")

    # A new session past the limit: the gateway's words in a toast, and no new tab.
    page.locator("#new-session").click()
    wait_until(lambda: "session limit (1) reached: close one" in toast_text(page), timeout=15, what="toast")
    assert page.locator("#tab-list li").count() == 1

    # A second tab on the same session: over WebSocket, and forced onto long-poll.
    expected = "too many terminal connections to main (1 open): close a tab"
    for query in ("", "&transport=poll"):
        second = browser.new_page()
        second.goto(f"{limited_app.url}/?token={limited_app.stack.token}{query}")
        wait_until(refused_toast(second, expected), timeout=15, what=f"refusal toast {query!r}")
        assert indicator(second)["state"] in ("reconnecting", "connecting")
        second.close()

    # Memory back: the banner goes at the next refresh of the session list.
    container.set_available(3000)
    wait_until(lambda: not banner.is_visible(), timeout=20, what="banner gone")
