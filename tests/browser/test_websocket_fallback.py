"""Behind a proxy that swallows WebSocket upgrades: long-poll within 3 s, then back to WebSocket.

The proxy is real (tests/browser/upgrade_proxy.py, TCP on 127.0.0.1 in front of the gateway started
with scripts/run); Chromium talks only to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import test_browser
from tests.browser.test_browser import indicator, screen, type_and_see
from tests.browser.upgrade_proxy import UpgradeSwallowingProxy
from tests.e2e.conftest import RunningApp
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser  # the same Chromium fixture
app = test_browser.app  # the app started with scripts/run

FALLBACK_BUDGET_SECONDS = 3.0
SWITCH_BACK_TIMEOUT_SECONDS = 60
KEYS_AFTER_SWITCH = 15


def type_keys_across_the_switch(page: Page, proxy: UpgradeSwallowingProxy) -> tuple[str, float]:
    """Type numbered words until the page is back on WebSocket and some more after; returns the text
    typed and how long the switch took once upgrades were let through."""
    typed: list[str] = []
    unblocked_at = switched_at = 0.0
    keys_after = 0
    deadline = time.monotonic() + SWITCH_BACK_TIMEOUT_SECONDS
    while keys_after < KEYS_AFTER_SWITCH:
        assert time.monotonic() < deadline, f"still on {indicator(page)} after {len(typed)} words"
        # A line per 20 words keeps each under the terminal's canonical-mode line limit.
        word = f"k{len(typed)}" + ("\n" if len(typed) % 20 == 19 else " ")
        page.keyboard.type(word, delay=10)
        typed.append(word)
        if len(typed) == 5:
            proxy.block_upgrades = False
            unblocked_at = time.monotonic()
        if switched_at:
            keys_after += 1
        elif unblocked_at and indicator(page)["transport"] == "websocket":
            switched_at = time.monotonic()
    return "".join(typed), switched_at - unblocked_at


def test_swallowed_upgrade_falls_back_to_long_poll_in_3_s_then_returns_to_websocket(
    browser: Browser, app: RunningApp, record_property: Callable[[str, object], None]
) -> None:
    typed_file: Path = app.stack.root / "typed.txt"
    with UpgradeSwallowingProxy(app.stack.port) as proxy:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        started = time.monotonic()

        def left() -> float:
            return max(0.05, started + FALLBACK_BUDGET_SECONDS - time.monotonic())

        page.goto(f"{proxy.url}/?token={app.stack.token}")
        wait_until(
            lambda: indicator(page) == {"state": "connected", "transport": "longpoll"},
            timeout=left(),
            what="connected over long-poll",
        )
        page.locator(".xterm").click()
        page.keyboard.type("echo polled $((6*7))\n")
        wait_until(lambda: "polled 42" in screen(page), timeout=left(), what="the echo over long-poll")
        fallback = time.monotonic() - started
        record_property("fallback_to_echo_seconds", round(fallback, 2))
        print(f"page load -> typed text echoed over long-poll: {fallback:.2f} s")
        assert proxy.swallowed >= 1 and proxy.passed_upgrades == 0

        # Every key typed while the page moves back to WebSocket must reach the shell once, in order.
        page.keyboard.type(f"cat > {typed_file}\n")
        wait_until(lambda: typed_file.exists(), what="cat started")
        typed, switch = type_keys_across_the_switch(page, proxy)
        record_property("switch_back_seconds", round(switch, 2))
        print(f"upgrades let through -> page on WebSocket: {switch:.2f} s")
        page.keyboard.type("\n")
        page.keyboard.press("Control+D")
        wait_until(lambda: typed_file.read_text().count("\n") == typed.count("\n") + 1, what="cat's lines")
        assert typed_file.read_text() == typed + "\n"

        assert proxy.passed_upgrades >= 1
        type_and_see(page, "echo socket $((6*7))", "socket 42")
        assert indicator(page) == {"state": "connected", "transport": "websocket"}
        assert not errors, errors
