"""Files in and out, and the agents' keys, in Chromium against the app started with scripts/run."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import test_browser
from tests.browser.test_browser import open_terminal, screen, type_and_see
from tests.e2e.conftest import RunningApp
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser  # the same Chromium fixture
app = test_browser.app

PNG = [137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13]  # a PNG signature and a little more


def start_typing(page: Page, text: str) -> None:
    """Type at the prompt without pressing Enter."""
    page.locator(".xterm").click()
    page.keyboard.type(text)


def finish_line(page: Page, expected: str) -> None:
    page.keyboard.press("Enter")
    wait_until(lambda: expected in screen(page), timeout=15, what=f"{expected!r} on screen")


def test_drop_and_paste_upload_and_type_the_path(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    uploads = app.stack.home / "uploads"

    # A file dropped on the terminal: uploaded with a progress box, its path typed at the cursor.
    page.evaluate(
        """() => { window.__progress = [];
                   const box = document.getElementById("upload-progress");
                   new MutationObserver(() => { if (!box.hidden) window.__progress.push(box.textContent); })
                     .observe(box, {attributes: true, subtree: true, childList: true}); }"""
    )
    start_typing(page, "wc -c ")
    page.evaluate(
        """(bytes) => {
          const dt = new DataTransfer();
          dt.items.add(new File([new Uint8Array(bytes)], "../my shot.png", {type: "image/png"}));
          const target = document.querySelector(".xterm");
          for (const type of ["dragenter", "dragover", "drop"])
            target.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        PNG,
    )
    wait_until(lambda: (uploads / "my_shot.png").exists(), timeout=15, what="dropped file saved")
    wait_until(lambda: "uploads/my_shot.png" in screen(page), timeout=15, what="path typed")
    finish_line(page, f"12 {uploads / 'my_shot.png'}")
    assert (uploads / "my_shot.png").read_bytes() == bytes(PNG)
    progress = page.evaluate("window.__progress")
    assert any(text.startswith("Uploading ../my shot.png") for text in progress), progress
    assert page.locator("#upload-progress").is_hidden()

    # An image pasted from the clipboard (as a screenshot tool leaves it): same route.
    start_typing(page, "wc -c ")
    page.evaluate(
        """(bytes) => {
          const dt = new DataTransfer();
          dt.items.add(new File([new Uint8Array(bytes)], "image.png", {type: "image/png"}));
          document.querySelector(".xterm-helper-textarea").dispatchEvent(
            new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
        }""",
        PNG,
    )
    wait_until(lambda: "uploads/image.png" in screen(page), timeout=15, what="pasted image's path typed")
    finish_line(page, f"12 {uploads / 'image.png'}")

    # Then a download from the same page: once lost (the OSC did not make it through tmux after
    # these uploads); the gateway now tells the page itself.
    (app.stack.home / "report.txt").write_text("after uploads\n")
    page.locator(".xterm").click()
    with page.expect_download(timeout=20_000) as downloading:
        page.keyboard.type("download ~/report.txt")
        page.keyboard.press("Enter")
    assert Path(downloading.value.path()).read_text() == "after uploads\n"


def test_download_in_the_shell_comes_back_through_the_page(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    # `download FILE` in the shell: the page saves the very file.
    (app.stack.home / "report.txt").write_text("report body\n")
    page.locator(".xterm").click()
    with page.expect_download(timeout=20_000) as downloading:
        page.keyboard.type("download ~/report.txt")
        page.keyboard.press("Enter")
    download = downloading.value
    assert download.suggested_filename == "report.txt"
    assert Path(download.path()).read_text() == "report body\n"
    wait_until(lambda: "sent to the browser" in screen(page), timeout=10, what="download's message")


def test_shift_enter_sends_esc_cr_ctrl_v_pastes_and_colours_are_true(
    browser: Browser, app: RunningApp
) -> None:
    page = open_terminal(browser, app)
    type_and_see(page, "echo CT=$COLORTERM", "CT=truecolor")

    # `cat -v` shows what the terminal sends: ESC CR prints as ^[ (a plain Enter as an empty line).
    type_and_see(page, "cat -v", "cat -v")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("after")
    page.keyboard.press("Enter")
    wait_until(
        lambda: "^[" in screen(page) and "after" in screen(page), timeout=15, what="ESC shown by cat -v"
    )
    page.keyboard.press("Control+D")

    # Ctrl+V pastes the browser's clipboard instead of sending ^V to the program.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("navigator.clipboard.writeText('echo pasted-$((40+2))')")
    page.locator(".xterm").click()
    page.keyboard.press("Control+V")
    finish_line(page, "pasted-42")
