"""axe-core (tests/browser/axe, pinned with its lockfile) on the terminal page, its panels and the
loading screen, in both themes: no critical or serious violation.

The app runs the real way (scripts/run) with the setup runner off; the tests write the setup and
sync status files, as in test_setup_ui.py and test_models_sync_ui.py.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from services.setup.status import StepState
from tests.browser import test_browser, test_setup_ui
from tests.browser.test_browser import indicator
from tests.browser.test_models_sync_ui import repo, stop_sync_program, write_sync
from tests.browser.test_setup_ui import loading_shown, step, write
from tests.e2e.conftest import RunningApp
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser
app = test_setup_ui.app  # setup runner off: the tests play it

AXE_DIR = Path(__file__).parent / "axe"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
# Impact levels that fail the test; "moderate" and "minor" are reported in the assertion text only.
BLOCKING = ("critical", "serious")


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core as pinned in tests/browser/axe/package-lock.json (npm ci from the npm registry)."""
    lock = AXE_DIR / "package-lock.json"
    if not AXE.is_file() or lock.stat().st_mtime > AXE.stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AXE_DIR, check=True, timeout=300
        )
    return AXE.read_text()


@pytest.fixture
def page(browser: Browser, app: RunningApp, axe_source: str) -> Iterator[Page]:
    # The page's CSP (script-src 'self') would refuse the injected axe script; the page's own code
    # is unaffected by bypassing it.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1440, "height": 900})
    context.add_init_script(axe_source)  # on every load, reloads included
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{app.url}/?token={app.stack.token}")
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="connected")
    yield page
    assert not errors, errors
    context.close()


def violations(page: Page, scope: str = "body") -> list[dict[str, Any]]:
    found = page.evaluate(
        """async (scope) => (await axe.run(document.querySelector(scope))).violations.map((v) => ({
             id: v.id, impact: v.impact, help: v.help,
             nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ') + ' — ' + n.failureSummary)}))""",
        scope,
    )
    return list(found)


def assert_no_blocking(page: Page, what: str, scope: str = "body") -> None:
    # Contrast is measured on what is drawn: mid fade-in (the loading screen's 0.2 s) colours are
    # blended with what lies below, so wait for finite animations to end first.
    page.wait_for_function(
        "document.getAnimations().every(a => a.playState !== 'running'"
        " || a.effect?.getComputedTiming().iterations === Infinity)",
        timeout=10_000,
    )
    found = violations(page, scope)
    blocking = [v for v in found if v["impact"] in BLOCKING]
    assert not blocking, f"{what}: {blocking}\n(all: {[(v['id'], v['impact']) for v in found]})"


def set_theme(page: Page, theme: str) -> None:
    page.locator("#settings-button").click()
    page.locator(f'#settings-popover input[value="{theme}"]').check()
    page.keyboard.press("Escape")


def test_terminal_page_tabs_settings_and_help(page: Page, app: RunningApp) -> None:
    test_setup_ui.write(app, "done", [], started=time.time() - 5, finished=time.time())
    subprocess_tmux(app, "new-session", "-d", "-s", "second")
    wait_until(lambda: page.locator("#tab-list [role=tab]").count() == 2, timeout=15, what="two tabs")
    for theme in ("dark", "light"):
        set_theme(page, theme)
        assert_no_blocking(page, f"terminal page ({theme})")
        page.locator("#settings-button").click()
        assert_no_blocking(page, f"settings popover ({theme})")
        page.keyboard.press("Escape")
        page.locator("#help-button").click()
        assert_no_blocking(page, f"help overlay ({theme})")
        page.keyboard.press("Escape")


def test_loading_screen_and_setup_panel(page: Page, app: RunningApp) -> None:
    now = time.time()
    identity = step("git-identity", "Workspace identity", "running", kind="builtin", started=now - 3)
    claude = step("claude", "Claude Code", version="2.1.197", agent=True, after=["git-identity"])
    write(app, "running", [identity, claude], started=now - 3, runner_pid=1)
    page.reload()
    wait_until(lambda: loading_shown(page), timeout=15, what="loading screen")
    wait_until(lambda: page.locator("#loading .step").count() == 2, timeout=10, what="step rows")
    for theme in ("dark", "light"):
        page.evaluate("(t) => { document.documentElement.dataset.theme = t; }", theme)
        assert_no_blocking(page, f"loading screen ({theme})", "#loading")
    page.keyboard.press("Escape")
    wait_until(lambda: not loading_shown(page), timeout=10, what="loading screen closed")
    identity.state, identity.ended = StepState.FAILED, time.time()
    identity.reason = "the workspace did not answer"
    write(app, "failed", [identity, claude], started=now - 3, finished=time.time(), runner_pid=None)
    wait_until(lambda: page.locator("#setup-badge").is_visible(), timeout=15, what="setup badge")
    page.locator("#setup-badge").click()
    wait_until(lambda: page.locator("#setup-panel").is_visible(), timeout=10, what="setup panel")
    for theme in ("dark", "light"):
        page.evaluate("(t) => { document.documentElement.dataset.theme = t; }", theme)
        assert_no_blocking(page, f"setup panel ({theme})")


def test_sync_panel(page: Page, app: RunningApp) -> None:
    stop_sync_program(app)
    failing = repo(
        "beta", "error", pending=3, last_error="workspace import failed: 403", skipped_large=["big.bin"]
    )
    write_sync(
        app, {"state": "error", "repos": [repo("alpha", "synced"), failing], "remote_root": "/Workspace/x"}
    )
    wait_until(lambda: page.locator("#sync-badge").is_visible(), timeout=20, what="sync badge")
    page.locator("#sync-badge").click()
    wait_until(lambda: page.locator("#sync-popover").is_visible(), timeout=10, what="sync popover")
    for theme in ("dark", "light"):
        page.evaluate("(t) => { document.documentElement.dataset.theme = t; }", theme)
        assert_no_blocking(page, f"sync panel ({theme})")


def subprocess_tmux(app: RunningApp, *args: str) -> None:
    settings = app.stack.settings
    subprocess.run([settings.tmux_bin, "-S", str(settings.tmux_socket), *args], check=True, timeout=10)
