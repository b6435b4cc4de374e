"""Degraded mode in Chromium: the banner says why there is no tmux, and the terminal still works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser import test_browser
from tests.browser.test_browser import indicator, open_terminal, type_and_see
from tests.conftest import Stack
from tests.e2e.conftest import RunningApp, start_app, stop_app, without_tmux
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser  # the same Chromium fixture


@pytest.fixture
def degraded_app(stack: Stack) -> Iterator[RunningApp]:
    without_tmux(stack)
    app = start_app(stack, tmux=False)
    yield app
    stop_app(app)


def test_banner_names_reason_loss_and_fix_and_the_terminal_works(
    browser: Browser, degraded_app: RunningApp
) -> None:
    page = open_terminal(browser, degraded_app)
    banner = page.locator("#degraded-banner")
    wait_until(banner.is_visible, timeout=15, what="degraded banner")
    text = banner.inner_text()
    assert "shells end when the web process restarts" in text
    assert "cannot reach http://127.0.0.1:" in text  # the reason
    assert "CODING_AGENTS_TMUX_URL" in text and 'retry "tmux" on the page' in text  # the fix
    assert page.locator("#degraded-banner .degraded-retry").is_visible()
    # The session is marked in its tab; typing works, and a reload reattaches to the same shell.
    assert "degraded" in (page.locator('#tab-list li[data-session="main"]').get_attribute("class") or "")
    type_and_see(page, "echo degraded $((6*7)) pid=$$", "degraded 42 pid=")
    page.reload()
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="reconnected")
    type_and_see(page, "echo again $((6*7)) pid=$$", "again 42 pid=")
    lines = test_browser.screen(page).splitlines()
    pids = {ln.split("pid=")[1].strip() for ln in lines if "42 pid=" in ln and not ln.rstrip().endswith("$$")}
    assert len(pids) == 1, lines  # the same shell before and after the reload
