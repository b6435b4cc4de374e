"""OSC 52 in Chromium (issue 12): a program's clipboard write shows a toast naming the session and
can be turned off; a clipboard query from a program is never answered by the page."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser import test_browser
from tests.browser.test_browser import open_terminal, type_and_see
from tests.conftest import Stack
from tests.e2e.conftest import RunningApp, start_app, stop_app, without_tmux
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser  # the same Chromium fixture

TEXT = "copied-by-a-program-42"  # 22 characters
# Through tmux passthrough, as clipboard tools send it under $TMUX (set-clipboard is external).
COPY = r"""printf '\ePtmux;\e\e]52;c;%s\a\e\\' "$(printf '%s' "$1" | base64 -w0)"; echo copy-sent"""
# In the pane: raw mode, a bare OSC 52 query, then whatever comes back within 3 s, to a file.
ASK = """
import os, select, sys, tty
tty.setraw(0)
os.write(1, b"\\x1b]52;c;?\\x07")
answer = b""
while select.select([0], [], [], 3)[0]:
    answer += os.read(0, 4096)
open(sys.argv[1], "wb").write(b"ANSWER:" + answer)
"""


@pytest.fixture
def app(stack: Stack) -> Iterator[RunningApp]:
    running = start_app(stack)
    yield running
    stop_app(running)


def run_in_main(app: RunningApp, *command: str) -> None:
    """Type a command into session main from outside the page: no click or key of the user's."""
    settings = app.stack.settings
    line = " ".join(command)
    tmux = [settings.tmux_bin, "-S", str(settings.tmux_socket)]
    subprocess.run([*tmux, "send-keys", "-t", "=main:", line, "Enter"], check=True, env=app.stack.env)


def test_a_programs_copy_shows_a_toast_and_can_be_turned_off(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    copy = app.stack.root / "copy.sh"
    copy.write_text(COPY)
    toast = page.locator("#toast")
    run_in_main(app, "bash", str(copy), TEXT)
    wait_until(
        lambda: "a program in main copied 22 characters" in toast.inner_text(), timeout=15, what="toast"
    )
    toast.locator("button", has_text="Turn off").click()
    assert page.evaluate("localStorage.getItem('clipboard-writes')") == "off"
    run_in_main(app, "bash", str(copy), TEXT)
    wait_until(
        lambda: "tried to copy 22 characters; clipboard writes are off" in toast.inner_text(),
        timeout=15,
        what="refusal toast",
    )
    toast.locator("button", has_text="Allow").click()
    assert page.evaluate("localStorage.getItem('clipboard-writes')") is None


@pytest.fixture
def degraded_app(stack: Stack) -> Iterator[RunningApp]:
    without_tmux(stack)
    running = start_app(stack, tmux=False)
    yield running
    stop_app(running)


def test_a_clipboard_query_gets_no_answer_from_the_page(browser: Browser, degraded_app: RunningApp) -> None:
    # Without tmux the page's answer would reach the program directly (tmux itself swallows an
    # outer terminal's OSC 52 reply), so this is where the page's own handler is put to the test.
    page = open_terminal(browser, degraded_app)
    ask, out = degraded_app.stack.root / "ask.py", degraded_app.stack.root / "answer"
    ask.write_text(ASK)
    type_and_see(page, f"{sys.executable} {ask} {out}; echo asked-$((6*7))", "asked-42")
    assert out.read_bytes() == b"ANSWER:"
