"""Issue 13 (A) in Chromium: one history (tmux's) for wheel, Find, scrollbar and swipe; typing after a
scroll; the page's own context menu; an outage you cannot miss, with keys kept for the reconnect."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import test_browser
from tests.browser.test_browser import indicator, screen, type_and_see
from tests.e2e.conftest import RunningApp
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
app = test_browser.app  # scripts/run with real tmux, gateway and supervisord
browser = test_browser.browser
page = test_browser.page  # a terminal page on `app`, closed after the test


def position(page: Page) -> int:
    """Lines above the live screen the view shows, as the page's scrollbar got it from tmux."""
    return int(page.evaluate("window.__terminal.history.state.position"))


def fill(page: Page, count: int) -> None:
    type_and_see(page, f"seq 1 {count}; echo filled-$((40+2))", "filled-42")
    # The scrollbar learns the history's length from tmux shortly after output.
    wait_until(lambda: page.evaluate("window.__terminal.history.state.history") >= count - 100, timeout=15)


def panes(app: RunningApp) -> int:
    settings = app.stack.settings
    command = [settings.tmux_bin, "-S", str(settings.tmux_socket), "display", "-p", "-t", "=main:"]
    command.append("#{window_panes}")
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def wheel_over_terminal(page: Page, notches: int) -> None:
    box = page.locator("#terminal").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(notches):
        page.mouse.wheel(0, -100)


def test_find_searches_all_of_tmux_history_and_jumps_there(page: Page) -> None:
    fill(page, 20000)
    # No second, partial history in xterm.js: its buffer is just the screen.
    assert page.evaluate("window.__terminal.term.buffer.active.length") == page.evaluate(
        "window.__terminal.term.rows"
    )
    page.keyboard.press("Control+Shift+F")
    page.locator("#search-input").fill("15000")
    wait_until(lambda: page.locator("#search-count").text_content() == "1/1", timeout=15, what="one match")
    wait_until(lambda: "\n15000\n" in screen(page), timeout=15, what="15000 shown")
    wait_until(lambda: position(page) > 4000, timeout=10, what="the scrollbar far back")
    page.keyboard.press("Escape")
    type_and_see(page, "echo found-$((40+2))", "found-42")  # typing brings the live screen back
    wait_until(lambda: position(page) == 0, timeout=10, what="back at the live screen")


def test_wheel_scrolls_three_lines_a_notch_and_typing_after_it_runs_intact(page: Page) -> None:
    fill(page, 2000)
    wheel_over_terminal(page, 1)
    wait_until(lambda: position(page) == 3, timeout=10, what="one notch = 3 lines")
    page.wait_for_timeout(300)  # lone notches, not one fast spin (which would speed up)
    wheel_over_terminal(page, 1)
    wait_until(lambda: position(page) == 6, timeout=10, what="two notches = 6 lines")
    page.keyboard.type("echo hi-$((40+2))")
    page.keyboard.press("Enter")
    wait_until(lambda: "hi-42" in screen(page), timeout=15, what="the command ran")
    assert "command not found" not in screen(page)
    wait_until(lambda: position(page) == 0, timeout=10, what="the scrollbar back at the live screen")


def test_right_click_opens_the_pages_menu_and_copy_says_copied(browser: Browser, app: RunningApp) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{app.url}/?token={app.stack.token}")
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="connected")
    type_and_see(page, "echo menu-$((40+2))", "menu-42")
    # A drag over the output selects it in tmux (mouse on), which copies it through OSC 52.
    row = screen(page).split("\n").index("menu-42")
    cell = page.evaluate(
        """() => { const t = window.__terminal.term;
                   const r = t.element.querySelector('.xterm-screen').getBoundingClientRect();
                   return {x: r.left, y: r.top, w: r.width / t.cols, h: r.height / t.rows}; }"""
    )
    y = cell["y"] + (row + 0.5) * cell["h"]
    page.mouse.move(cell["x"] + 0.5 * cell["w"], y)
    page.mouse.down()
    page.mouse.move(cell["x"] + 4 * cell["w"], y, steps=4)
    page.mouse.move(cell["x"] + 7.5 * cell["w"], y, steps=4)
    page.mouse.up()
    wait_until(lambda: page.locator("#toast").text_content() == "Copied", timeout=5, what="Copied on select")
    # Where tmux starts the selection depends on how Chromium batches the moves: some of the word.
    selected = page.evaluate("navigator.clipboard.readText()")
    assert selected and selected in "menu-42", selected
    page.evaluate("navigator.clipboard.writeText('something else')")
    page.locator("#toast").click()  # dismissed, so the next "Copied" is the menu's
    page.mouse.click(cell["x"] + 3 * cell["w"], y, button="right")
    menu = page.locator("#terminal-menu")
    wait_until(menu.is_visible, timeout=5, what="the page's menu")
    assert [b.text_content() for b in menu.locator("button").all()] == [
        "Copy",
        "Paste",
        "Find…",
        "Split pane",
        "Clear",
    ]
    page.wait_for_timeout(300)  # tmux would have drawn its own menu by now
    assert "Kill" not in screen(page) and "Respawn" not in screen(page)
    menu.get_by_text("Copy").click()
    wait_until(lambda: page.locator("#toast").text_content() == "Copied", timeout=5, what="Copied toast")
    assert page.evaluate("navigator.clipboard.readText()") == selected
    # The selection is still shown (tmux keeps it, copy-pipe-no-clear), and typing still works.
    type_and_see(page, "echo after-$((40+2))", "after-42")
    page.mouse.click(cell["x"] + 3 * cell["w"], y, button="right")
    menu.get_by_text("Split pane").click()
    wait_until(lambda: panes(app) == 2, timeout=10, what="a second pane, split by tmux")
    context.close()


def test_gateway_stopped_shows_the_overlay_and_keys_typed_meanwhile_run_after(
    page: Page, app: RunningApp
) -> None:
    assert "gateway: stopped" in app.ctl("stop", "gateway")
    overlay = page.locator("#outage")
    wait_until(overlay.is_visible, timeout=15, what="disconnected overlay")
    assert page.locator("#terminal-area").get_attribute("data-outage") is not None
    assert overlay.get_by_text("Reconnect now").is_visible()
    page.keyboard.type("echo kept-$((40+2))")
    page.keyboard.press("Enter")
    wait_until(lambda: "will be sent" in (overlay.text_content() or ""), timeout=5, what="pending shown")
    # Beyond the limit, input is refused out loud (a toast), never dropped silently.
    page.evaluate("window.__terminal.term.input('x'.repeat(5000), true)")
    wait_until(lambda: "not sent" in (page.locator("#toast").text_content() or ""), timeout=5, what="refused")
    # "Reconnect now" tries at once instead of waiting out the backoff.
    page.evaluate(
        """() => { window.__states = [];
                   new MutationObserver(() => window.__states.push(
                       document.getElementById('connection').dataset.state))
                     .observe(document.getElementById('connection'), {attributes: true}); }"""
    )
    overlay.get_by_text("Reconnect now").click()
    wait_until(lambda: "connecting" in page.evaluate("window.__states"), timeout=5, what="an attempt at once")
    assert "gateway: started" in app.ctl("start", "gateway")
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=30, what="reconnected")
    wait_until(lambda: "kept-42" in screen(page), timeout=15, what="buffered keys ran")
    assert not overlay.is_visible()


def test_offline_event_says_offline_and_online_reconnects(page: Page) -> None:
    page.context.set_offline(True)
    wait_until(lambda: indicator(page)["state"] == "offline", timeout=10, what="indicator offline")
    assert "offline" in (page.locator("#connection").text_content() or "")
    assert "offline" in (page.locator("#outage").text_content() or "")
    page.context.set_offline(False)
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=30, what="connected again")
    type_and_see(page, "echo back-$((40+2))", "back-42")


def test_phone_swipe_scrolls_history_and_key_bar_pages(browser: Browser, app: RunningApp) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(f"{app.url}/?token={app.stack.token}")
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="connected")
    fill(page, 3000)
    box = page.locator("#terminal").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + 60
    cdp = context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 11):
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y + step * 30}]}
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_until(lambda: position(page) >= 10, timeout=10, what="the swipe scrolled back")
    swiped = position(page)
    keybar = page.locator("#keybar")
    assert keybar.is_visible()
    page_up = keybar.get_by_role("button", name="Page up")
    page_down = keybar.get_by_role("button", name="Page down")
    # Every key fits a phone's width, PgUp and PgDn included.
    widths = page.evaluate(
        "(() => { const k = document.getElementById('keybar'); return [k.scrollWidth, k.clientWidth]; })()"
    )
    assert widths[0] <= widths[1], widths
    page_up.click()
    rows = int(page.evaluate("window.__terminal.term.rows"))
    wait_until(lambda: position(page) == swiped + rows - 1, timeout=10, what="PgUp: a screen back")
    page_down.click()
    wait_until(lambda: position(page) == swiped, timeout=10, what="PgDn: a screen forward")
    context.close()


def test_links_open_on_ctrl_click_only(page: Page, app: RunningApp) -> None:
    type_and_see(page, "echo http://127.0.0.1:9/link-$((40+2))", "link-42")
    row = screen(page).split("\n").index("http://127.0.0.1:9/link-42")
    cell = page.evaluate(
        """() => { const t = window.__terminal.term;
                   const r = t.element.querySelector('.xterm-screen').getBoundingClientRect();
                   return {x: r.left, y: r.top, w: r.width / t.cols, h: r.height / t.rows}; }"""
    )
    x, y = cell["x"] + 10.5 * cell["w"], cell["y"] + (row + 0.5) * cell["h"]
    page.evaluate("() => { window.__opened = []; window.open = (url) => { window.__opened.push(url); }; }")
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_timeout(500)  # a plain click must not open anything, however long we wait
    assert page.evaluate("window.__opened") == []
    page.keyboard.down("Control")
    page.mouse.move(x + 2, y)
    page.mouse.click(x + 2, y)
    page.keyboard.up("Control")
    wait_until(lambda: page.evaluate("window.__opened") == ["http://127.0.0.1:9/link-42"], timeout=5)
