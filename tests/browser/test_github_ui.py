"""A link gh would open in a browser (`gh auth login --web`'s device page), as the page shows it: the
shells' GH_BROWSER prints it, and Ctrl+click on it opens it in the user's own browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser import test_browser
from tests.browser.test_browser import screen, type_and_see
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
app = test_browser.app  # scripts/run with real tmux, gateway and supervisord
browser = test_browser.browser
page = test_browser.page  # a terminal page on `app`, closed after the test


def test_gh_browser_prints_a_link_the_page_opens(page: Page) -> None:
    url = "https://github.com/login/device/42"
    type_and_see(page, '"$GH_BROWSER" https://github.com/login/device/$((40+2))', "device/42")
    lines = screen(page).split("\n")
    row = lines.index(f"  {url}")
    assert lines[row - 1].strip().startswith("Open this link in your browser (Ctrl+click it")
    cell = page.evaluate(
        """() => { const t = window.__terminal.term;
                   const r = t.element.querySelector('.xterm-screen').getBoundingClientRect();
                   return {x: r.left, y: r.top, w: r.width / t.cols, h: r.height / t.rows}; }"""
    )
    x, y = cell["x"] + 12.5 * cell["w"], cell["y"] + (row + 0.5) * cell["h"]
    page.evaluate("() => { window.__opened = []; window.open = (url) => { window.__opened.push(url); }; }")
    page.mouse.move(x, y)
    page.keyboard.down("Control")
    page.mouse.move(x + 2, y)
    page.mouse.click(x + 2, y)
    page.keyboard.up("Control")
    wait_until(lambda: page.evaluate("window.__opened") == [url], timeout=10, what="the link to open")
