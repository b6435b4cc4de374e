"""Tabs, keys, preferences, background-tab marks and the cached reload, in Chromium against the app
started with scripts/run (real tmux, gateway and supervisord)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from services.version import app_version
from tests.browser import test_browser
from tests.browser.test_browser import indicator, open_terminal, screen, type_and_see
from tests.e2e.conftest import RunningApp
from tests.helpers import wait_until
from tests.page_weight import measure

pytestmark = pytest.mark.slow
browser = test_browser.browser
app = test_browser.app

TABS_JS = """() => [...document.querySelectorAll('#tab-list [role=tab]')].map((t) => ({
  name: t.dataset.session, selected: t.getAttribute('aria-selected'), tabindex: t.tabIndex,
  mark: t.dataset.mark ?? '', classes: t.className }))"""


def tmux(app: RunningApp, *args: str) -> str:
    settings = app.stack.settings
    result = subprocess.run(
        [settings.tmux_bin, "-S", str(settings.tmux_socket), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return result.stdout


def tmux_sessions(app: RunningApp) -> list[str]:
    return tmux(app, "list-sessions", "-F", "#{session_name}").split()


def tabs(page: Page) -> list[dict[str, Any]]:
    return list(page.evaluate(TABS_JS))


def tab_names(page: Page) -> list[str]:
    return [t["name"] for t in tabs(page)]


def current(page: Page) -> str:
    return next((t["name"] for t in tabs(page) if t["selected"] == "true"), "")


def connected_to(page: Page, name: str) -> bool:
    return indicator(page)["state"] == "connected" and current(page) == name and f"s={name}" in page.url


def pane_size(app: RunningApp, session: str) -> tuple[int, int]:
    cols, rows = tmux(
        app, "display-message", "-p", "-t", f"={session}:", "#{pane_width} #{pane_height}"
    ).split()
    return int(cols), int(rows)


def test_rename_by_double_click_is_kept_in_tmux_and_survives_a_reload(
    browser: Browser, app: RunningApp
) -> None:
    page = open_terminal(browser, app)
    type_and_see(page, "echo named $((6*7))", "named 42")
    page.locator('#tab-list [data-session="main"]').dblclick()
    field = page.locator("#tab-list input.tab-rename")
    assert field.input_value() == "main"
    field.fill("work-1")
    field.press("Enter")
    wait_until(lambda: connected_to(page, "work-1"), timeout=15, what="renamed and reattached")
    assert tmux_sessions(app) == ["work-1"]
    page.reload()
    wait_until(lambda: connected_to(page, "work-1"), timeout=15, what="reattached after reload")
    assert tab_names(page) == ["work-1"]
    wait_until(lambda: "named 42" in screen(page), timeout=10, what="the same shell's screen")

    # A taken name: the gateway's 409 in a toast, and nothing renamed.
    tmux(app, "new-session", "-d", "-s", "other")
    wait_until(lambda: "other" in tab_names(page), timeout=15, what="second tab listed")
    page.locator('#tab-list [data-session="work-1"]').dblclick()
    page.locator("#tab-list input.tab-rename").fill("other")
    page.locator("#tab-list input.tab-rename").press("Enter")
    wait_until(lambda: "already exists" in page.locator("#toast").inner_text(), timeout=10, what="409 toast")
    assert sorted(tmux_sessions(app)) == ["other", "work-1"]
    assert current(page) == "work-1"


def test_tab_keys_new_next_previous_close_and_leaving_the_terminal(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    page.locator(".xterm").click()
    page.keyboard.press("Alt+Shift+N")
    wait_until(lambda: connected_to(page, "shell-1"), timeout=15, what="new session by key")
    page.keyboard.press("Alt+Shift+N")
    wait_until(lambda: connected_to(page, "shell-2"), timeout=15, what="second new session")
    assert tab_names(page) == ["main", "shell-1", "shell-2"]
    page.keyboard.press("Alt+Shift+ArrowLeft")
    wait_until(lambda: connected_to(page, "shell-1"), timeout=15, what="previous tab")
    page.keyboard.press("Alt+Shift+ArrowRight")
    page.keyboard.press("Alt+Shift+ArrowRight")
    wait_until(lambda: connected_to(page, "main"), timeout=15, what="next tab wraps around")
    # The keys never reached the shell: typing still works and nothing odd was typed.
    type_and_see(page, "echo clean $((6*7))", "clean 42")

    # Out of the terminal by key: focus on the current tab, arrows move it (roving tabindex),
    # Enter opens, Escape goes back into the terminal.
    page.keyboard.press("Alt+Shift+T")
    focused = "() => document.activeElement.closest('[role=tab]')?.dataset.session ?? ''"
    assert page.evaluate(focused) == "main"
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == "shell-1"
    assert [t["tabindex"] for t in tabs(page)] == [-1, 0, -1]
    page.keyboard.press("Enter")
    wait_until(lambda: connected_to(page, "shell-1"), timeout=15, what="opened from the tab bar")
    page.keyboard.press("Alt+Shift+T")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.classList.contains('xterm-helper-textarea')")

    # Close by key, after the confirmation; the neighbour takes its place.
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Alt+Shift+W")
    wait_until(lambda: "shell-1" not in tmux_sessions(app), timeout=15, what="closed in tmux")
    wait_until(lambda: connected_to(page, "shell-2"), timeout=15, what="neighbour opened")


def test_help_overlay_lists_the_keys(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    page.locator("#help-button").click()
    dialog = page.locator("#help")
    assert dialog.is_visible()
    text = dialog.inner_text()
    for keys in (
        "Alt+Shift+N",
        "Alt+Shift+W",
        "Alt+Shift+T",
        "Ctrl+=",
        "Ctrl+Shift+F",
        "Shift+Enter",
        "Right-click",
    ):
        assert keys in text, keys
    # Which build this is, for a bug report: the checkout's `git describe` (services/version.py).
    version = page.locator("#help .help-version")
    wait_until(lambda: version.inner_text() == f"Coding Agents {app_version()}", timeout=10, what="version")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    page.locator(".xterm").click()
    page.keyboard.press("Alt+Shift+Slash")
    assert dialog.is_visible()


def test_an_ended_shell_keeps_its_tab_in_place(browser: Browser, app: RunningApp) -> None:
    tmux(app, "new-session", "-d", "-s", "b")
    tmux(app, "new-session", "-d", "-s", "c")
    page = open_terminal(browser, app, "&s=b")
    wait_until(lambda: tab_names(page) == ["main", "b", "c"], timeout=15, what="three tabs")
    type_and_see(page, "exit", "")
    wait_until(lambda: "b" not in tmux_sessions(app), timeout=15, what="shell b ended")
    wait_until(lambda: page.locator("#session-overlay").is_visible(), timeout=15, what="ended overlay")
    wait_until(lambda: "missing" in tabs(page)[1]["classes"], timeout=15, what="ended tab marked")
    assert tab_names(page) == ["main", "b", "c"]


def test_font_size_keys_resize_the_tmux_pane_and_are_remembered(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    wait_until(lambda: pane_size(app, "main")[0] > 80, timeout=15, what="pane fits the window")
    before = pane_size(app, "main")
    page.locator(".xterm").click()
    for _ in range(4):
        page.keyboard.press("Control+Equal")
    wait_until(lambda: page.evaluate("window.__terminal.term.options.fontSize") == 18, timeout=5, what="18px")
    wait_until(lambda: pane_size(app, "main")[0] < before[0], timeout=15, what="fewer columns in tmux")
    bigger = pane_size(app, "main")
    assert bigger[1] < before[1]
    page.reload()
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="reconnected")
    assert page.evaluate("window.__terminal.term.options.fontSize") == 18
    page.locator(".xterm").click()
    page.keyboard.press("Control+Digit0")
    wait_until(lambda: pane_size(app, "main") == before, timeout=15, what="default size again")


def test_light_theme_and_system_theme_follow_the_choice(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    page.emulate_media(color_scheme="dark")
    palette = "() => window.__terminal.term.options.theme.background"
    look = """() => [document.documentElement.dataset.theme,
                     getComputedStyle(document.body).backgroundColor,
                     document.querySelector('meta[name=color-scheme]').content]"""
    wait_until(lambda: page.evaluate(palette) == "#16181d", timeout=5, what="dark (system, emulated)")
    page.locator("#settings-button").click()
    page.locator('#settings-popover input[value="light"]').check()
    assert page.evaluate(palette) == "#fafafa"
    assert page.evaluate(look) == ["light", "rgb(250, 250, 250)", "light"]
    page.reload()
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="reconnected")
    assert page.evaluate(palette) == "#fafafa"  # remembered
    # System: follows prefers-color-scheme, also when it changes while the page is open.
    page.locator("#settings-button").click()
    page.locator('#settings-popover input[value="system"]').check()
    assert page.evaluate(palette) == "#16181d"
    page.emulate_media(color_scheme="light")
    wait_until(lambda: page.evaluate(palette) == "#fafafa", timeout=5, what="light by the system")
    assert page.evaluate(look)[0] == "light"
    page.emulate_media(color_scheme="dark")
    wait_until(lambda: page.evaluate(palette) == "#16181d", timeout=5, what="dark by the system")


def test_a_bell_in_a_background_tab_marks_it_until_opened(browser: Browser, app: RunningApp) -> None:
    tmux(app, "new-session", "-d", "-s", "bg")
    page = open_terminal(browser, app)
    wait_until(lambda: tab_names(page) == ["main", "bg"], timeout=15, what="two tabs")
    tmux(app, "send-keys", "-t", "=bg:", "printf 'ding\\a\\n'", "Enter")
    wait_until(lambda: tabs(page)[1]["mark"] == "bell", timeout=20, what="bell mark on bg")
    assert tabs(page)[0]["mark"] == ""
    page.locator('#tab-list [data-session="bg"]').click()
    wait_until(lambda: connected_to(page, "bg"), timeout=15, what="bg opened")
    assert tabs(page)[1]["mark"] == ""
    # A bell in the tab on screen marks nothing.
    type_and_see(page, 'printf "ding-%s\\a\\n" $((6*7))', "ding-42")
    page.locator('#tab-list [data-session="main"]').click()
    wait_until(lambda: connected_to(page, "main"), timeout=15, what="main again")
    # After the next refresh of the list: the bell rung on screen left no mark.
    with page.expect_response(lambda r: r.url.endswith("/api/sessions"), timeout=20_000) as listed:
        pass
    listed.value.finished()
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done(null)))")  # handled
    assert tabs(page)[1]["mark"] != "bell"


def test_a_warm_reload_asks_for_the_page_only(browser: Browser, app: RunningApp) -> None:
    context = browser.new_context()
    page = context.new_page()
    ready = lambda: indicator(page)["state"] == "connected"  # noqa: E731
    cold = measure(page, lambda: page.goto(f"{app.url}/?token={app.stack.token}"), ready)
    cold_static = [u for u in cold.sent_urls() if "/static/" in u]
    assert len(cold_static) >= 20, cold.sent_urls()
    assert cold.bytes <= 300 * 1024, cold.bytes
    warm = measure(page, page.reload, ready)
    # The HTML and the page's API calls; every script and stylesheet from the cache.
    assert [u for u in warm.sent_urls() if "/static/" in u] == [], warm.sent_urls()
    assert warm.cached >= 20
    assert warm.requests <= 5, warm.sent_urls()
    context.close()


def test_a_finished_command_in_a_background_tab_is_marked_and_notified(
    browser: Browser, app: RunningApp
) -> None:
    tmux(app, "new-session", "-d", "-s", "job")
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=app.url)
    # The browser's own Notification, recorded on the way (what a desktop would show is not visible).
    context.add_init_script(
        """(() => { const Real = window.Notification; window.__notices = [];
             window.Notification = new Proxy(Real, { construct(target, args) {
               window.__notices.push(args[0] + ': ' + (args[1]?.body ?? ''));
               return new Real(...args); } }); })()"""
    )
    page = context.new_page()
    page.goto(f"{app.url}/?token={app.stack.token}")
    wait_until(lambda: connected_to(page, "main"), timeout=15, what="connected")
    page.locator("#settings-button").click()
    page.locator("#settings-popover input.notify").check()
    assert page.locator("#settings-popover input.notify").is_checked()
    page.keyboard.press("Escape")
    wait_until(lambda: tab_names(page) == ["main", "job"], timeout=15, what="two tabs")
    tmux(app, "send-keys", "-t", "=job:", "sleep 3; echo done-$((6*7))", "Enter")
    wait_until(lambda: tabs(page)[1]["mark"] == "finished", timeout=60, what="finished mark on job")
    assert page.evaluate("window.__notices") == ["Session job: has finished: it printed and is now quiet"]
    assert tabs(page)[0]["mark"] == ""
    # Remembered across a reload, as every preference.
    page.reload()
    wait_until(lambda: connected_to(page, "main"), timeout=15, what="reconnected")
    page.locator("#settings-button").click()
    assert page.locator("#settings-popover input.notify").is_checked()
    context.close()
