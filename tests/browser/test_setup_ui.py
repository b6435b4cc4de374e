"""The setup UI in Chromium: loading screen, snake, setup panel and launchers.

The app runs the real way (scripts/run, supervisord) with the setup runner off; each test plays the
runner by writing the status file, which is the contract between runner and gateway.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page

from services.setup.status import SetupState, SetupStatus, StepState, StepStatus, status_path, write_status
from tests.browser import test_browser
from tests.browser.test_browser import indicator, open_terminal, screen
from tests.conftest import Stack
from tests.e2e.conftest import RunningApp, start_app, stop_app
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser  # the same Chromium fixture

STEPS_JS = """(scope) => [...document.querySelectorAll(scope + ' .step')].map((li) => {
  const part = (name) => li.querySelector(name);
  return {
    id: li.dataset.step,
    state: li.dataset.state,
    badge: part('.step-badge').textContent,
    version: part('.step-version').textContent,
    time: part('.step-time').textContent,
    seconds: part('.step-time').dataset.seconds === '' ? null : Number(part('.step-time').dataset.seconds),
    reason: part('.step-reason').hidden ? '' : part('.step-reason').textContent,
  };
})"""


@pytest.fixture
def app(stack: Stack) -> Iterator[RunningApp]:
    # No setup program: these tests are the runner (see write()).
    stack.env["CODING_AGENTS_SETUP"] = "off"
    running = start_app(stack)
    yield running
    stop_app(running)


def step(step_id: str, title: str, state: str = "pending", **fields: Any) -> StepStatus:
    fields.setdefault("kind", "npm" if fields.get("agent") else "download")
    return StepStatus(id=step_id, title=title, state=StepState(state), **fields)


def write(app: RunningApp, state: str, steps: list[StepStatus], **fields: Any) -> None:
    status = SetupStatus(state=SetupState(state), steps=steps, **fields)
    write_status(status_path(app.stack.settings), status)


def steps(page: Page, scope: str) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in page.evaluate(STEPS_JS, scope)}


def row(page: Page, scope: str, step_id: str, part: str) -> Locator:
    return page.locator(f"{scope} .step[data-step={step_id}] {part}")


def loading_shown(page: Page) -> bool:
    return bool(page.evaluate("!document.getElementById('loading').hidden"))


def badge(page: Page) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => { const b = document.getElementById('setup-badge');
                       return {state: b.dataset.state ?? null, label: b.textContent.trim(),
                               hidden: b.hidden}; }"""
        )
    )


def launchers(page: Page, scope: str) -> list[str]:
    return list(
        page.evaluate(
            "(scope) => [...document.querySelectorAll(scope + ' .launchers:not([hidden]) .launcher')]"
            ".map((b) => b.dataset.agent)",
            scope,
        )
    )


def snake(page: Page) -> dict[str, Any]:
    return dict(page.evaluate("window.__snake.state"))


def terminal_focused(page: Page) -> bool:
    return bool(page.evaluate("document.activeElement?.classList.contains('xterm-helper-textarea')"))


def test_loading_screen_follows_setup_progress(browser: Browser, app: RunningApp) -> None:
    now = time.time()
    identity = step("git-identity", "Workspace identity", "running", kind="builtin", started=now - 3)
    identity.log_tail = ["writing ~/.databrickscfg"]
    claude = step("claude", "Claude Code", version="2.1.197", agent=True, after=["git-identity"])
    micro = step("micro", "micro editor", version="2.0.14")
    write(app, "running", [identity, claude, micro], started=now - 3, runner_pid=1)

    page = open_terminal(browser, app)
    wait_until(lambda: loading_shown(page), timeout=10, what="loading screen")
    rows = wait_until(lambda: steps(page, "#loading") or None, timeout=5, what="step rows")
    assert list(rows) == ["git-identity", "claude", "micro"]
    assert [r["state"] for r in rows.values()] == ["running", "pending", "pending"]
    assert rows["claude"]["version"] == "2.1.197"
    assert rows["claude"]["seconds"] is None  # not started: no time
    first = rows["git-identity"]["seconds"]
    assert 3 <= first <= 30, rows
    # Live while running, on the server's clock.
    wait_until(
        lambda: steps(page, "#loading")["git-identity"]["seconds"] >= first + 2,
        timeout=10,
        what="time running",
    )
    assert row(page, "#loading", "git-identity", ".step-last").inner_text() == identity.log_tail[0]
    assert page.locator("#loading .setup-count").inner_text() == "0 of 3 steps finished"
    assert launchers(page, "#loading") == []
    assert not terminal_focused(page)  # the game has the keys, not the shell

    # The runner moves on: identity done (5 s, final), Claude Code installing.
    now = time.time()
    identity.state, identity.started, identity.ended = StepState.OK, now - 7, now - 2
    claude.state, claude.started = StepState.RUNNING, now - 2
    write(app, "running", [identity, claude, micro], started=now - 7, runner_pid=1)
    rows = wait_until(
        lambda: (r := steps(page, "#loading"))["claude"]["state"] == "running" and r,
        timeout=5,
        what="claude running",
    )
    assert rows["git-identity"]["state"] == "ok" and rows["git-identity"]["time"] == "5s", rows
    assert page.locator("#loading .setup-count").inner_text() == "1 of 3 steps finished"

    # Claude Code installed: its launcher appears; micro fails, so the run ends failed.
    now = time.time()
    claude.state, claude.ended = StepState.OK, now
    micro.state, micro.started, micro.ended, micro.exit_code = StepState.FAILED, now - 1, now, 1
    micro.reason = "sha256 mismatch for micro-2.0.14-linux64-static.tar.gz"
    micro.log_tail = [
        "downloading micro-2.0.14-linux64-static.tar.gz",
        "sha256 mismatch: got 00ff, want 12ab",
    ]
    write(app, "failed", [identity, claude, micro], started=now - 7, finished=now, runner_pid=None)
    wait_until(lambda: launchers(page, "#loading") == ["claude"], timeout=5, what="claude launcher")
    rows = steps(page, "#loading")
    assert rows["micro"]["state"] == "failed" and rows["micro"]["reason"] == micro.reason, rows
    assert row(page, "#loading", "micro", ".step-retry").is_visible()
    assert page.locator("#loading .setup-count").inner_text() == "3 of 3 steps finished · 1 failed"
    assert page.locator("#loading-title").inner_text() == "Setup finished with problems"
    row(page, "#loading", "micro", ".step-log summary").click()
    assert "sha256 mismatch: got 00ff" in row(page, "#loading", "micro", ".step-log pre").inner_text()
    assert loading_shown(page)  # a failed run keeps the screen up, with its failures

    # Fixed (say by a retry): the screen says so and gives way to the terminal by itself.
    micro.state, micro.reason, micro.log_tail = StepState.OK, "", []
    write(app, "done", [identity, claude, micro], started=now - 7, finished=time.time())
    wait_until(lambda: not loading_shown(page), timeout=10, what="loading screen gone after done")
    wait_until(lambda: terminal_focused(page), timeout=5, what="terminal focused")
    assert badge(page) == {"state": "done", "label": "agents", "hidden": False}

    # A failed run seen on a first visit: no loading screen, a red badge, Retry in the panel.
    micro.state, micro.reason = StepState.FAILED, "download timed out after 600 s"
    write(app, "failed", [identity, claude, micro], started=now - 7, finished=time.time())
    page = open_terminal(browser, app)
    wait_until(lambda: badge(page)["state"] == "failed", timeout=10, what="failed badge")
    assert not loading_shown(page)
    assert badge(page)["label"] == "setup failed"
    page.locator("#setup-badge").click()
    assert page.locator("#setup-panel").is_visible()
    assert steps(page, "#setup-panel")["micro"]["reason"] == micro.reason
    with page.expect_response("**/api/setup/retry") as answer:
        row(page, "#setup-panel", "micro", ".step-retry").click()
    response = answer.value
    assert response.request.post_data_json == {"step": "micro"}
    if response.status == 202:
        # Until the new run shows in the status, a second retry is not offered.
        retry = row(page, "#setup-panel", "micro", ".step-retry")
        wait_until(
            lambda: retry.is_disabled() and retry.inner_text() == "Retrying…", timeout=5, what="retrying"
        )
    else:  # 409/503 from the backend: the page shows the gateway's own words
        toast = page.locator("#toast")
        wait_until(lambda: toast.is_visible() and toast.inner_text(), timeout=5, what="toast")
        assert not toast.inner_text().startswith("request failed"), toast.inner_text()


def test_snake_takes_the_keys_until_escape(browser: Browser, app: RunningApp) -> None:
    write(app, "running", [step("claude", "Claude Code", "running", agent=True, started=time.time())])
    page = open_terminal(browser, app)
    wait_until(lambda: loading_shown(page), timeout=10, what="loading screen")
    start = snake(page)
    assert start["phase"] == "ready" and not start["running"]  # waits for the first key
    assert start["direction"] == "right" and start["length"] == 3 and start["score"] == 0
    x0, y0 = start["head"]

    page.keyboard.press("ArrowUp")
    moved = wait_until(lambda: (s := snake(page))["head"][1] < y0 and s, timeout=5, what="head moves up")
    assert moved["head"][0] == x0 and moved["direction"] == "up" and moved["running"]
    page.keyboard.press("ArrowDown")  # straight back into its neck: ignored
    page.keyboard.press("a")  # WASD too
    moved = wait_until(lambda: (s := snake(page))["head"][0] < x0 and s, timeout=5, what="head moves left")
    assert moved["direction"] == "left"

    # Food two cells ahead (placed in one JS turn, so the snake cannot move in between): it grows.
    page.evaluate("() => { const [x, y] = window.__snake.state.head; window.__snake.placeFood([x - 2, y]); }")
    fed = wait_until(lambda: (s := snake(page))["score"] == 1 and s, timeout=5, what="food eaten")
    assert fed["length"] == 4 and fed["speedMs"] < start["speedMs"], fed
    # Left it goes until the wall: game over, high score kept for next time.
    over = wait_until(lambda: (s := snake(page))["phase"] == "over" and s, timeout=10, what="game over")
    # The food that follows is random and may lie on the way to the wall: the score is 1 or more.
    final = over["score"]
    assert final >= 1 and over["high"] == final and not over["running"]
    assert page.evaluate("localStorage.getItem('coding-agents.snake.high')") == str(final)
    assert page.locator("#loading .snake-high").inner_text() == str(final)
    page.keyboard.press("Space")  # restart
    again = wait_until(lambda: (s := snake(page))["running"] and s, timeout=5, what="restarted")
    assert again["score"] == 0 and again["high"] == final
    # A swipe (pointer events, as a finger makes them) turns it too.
    box = page.locator("#loading canvas").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + 60, steps=4)
    page.mouse.up()
    wait_until(lambda: snake(page)["direction"] == "down", timeout=5, what="swipe turns down")

    # None of this, nor typing, reached the shell.
    page.keyboard.type("echo leaked")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_until(lambda: not loading_shown(page), timeout=5, what="Escape closes the loading screen")
    assert not snake(page)["running"]  # paused while hidden
    page.keyboard.type("echo $((2+3))z")
    page.keyboard.press("Enter")
    wait_until(lambda: "5z" in screen(page), timeout=15, what="5z in the terminal")
    assert "leaked" not in screen(page)


def test_go_to_terminal_reload_launchers_and_done(browser: Browser, app: RunningApp) -> None:
    now = time.time()
    claude = step("claude", "Claude Code", "running", version="2.1.197", agent=True, started=now)
    gemini = step("gemini", "Gemini CLI", version="0.61.0", agent=True)
    write(app, "running", [claude, gemini], started=now, runner_pid=1)
    page = open_terminal(browser, app)
    wait_until(lambda: loading_shown(page), timeout=10, what="loading screen")

    # Setup still runs, but the terminal is one click away and usable at once (no click on it).
    page.get_by_role("button", name="Go to terminal").click()
    assert not loading_shown(page)
    wait_until(lambda: terminal_focused(page), timeout=5, what="terminal focused")
    page.keyboard.type("echo $((2+3))z")
    page.keyboard.press("Enter")
    wait_until(lambda: "5z" in screen(page), timeout=15, what="5z in the terminal")

    # Dismissed for this tab: a reload goes straight to the terminal, with the badge in the bar.
    page.reload()
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="reconnected")
    wait_until(lambda: badge(page)["state"] == "running", timeout=10, what="badge")
    assert not loading_shown(page)
    assert badge(page) == {"state": "running", "label": "setup 0/2", "hidden": False}

    # The panel lists the steps; a launcher appears once an agent is installed.
    page.locator("#setup-badge").click()
    assert page.locator("#setup-panel").is_visible()
    assert launchers(page, "#setup-panel") == []
    claude.state, claude.ended = StepState.OK, time.time()
    gemini.state, gemini.started = StepState.RUNNING, time.time()
    write(app, "running", [claude, gemini], started=now, runner_pid=1)
    wait_until(lambda: launchers(page, "#setup-panel") == ["claude"], timeout=5, what="claude launcher")
    assert badge(page)["label"] == "setup 1/2"
    assert steps(page, "#setup-panel")["gemini"]["state"] == "running"

    probe = page.evaluate(
        """async () => (await fetch('/api/sessions/main/windows', {method: 'POST',
                 headers: {'Content-Type': 'application/json'}, body: JSON.stringify({agent: ''})})).status"""
    )
    if probe != 404:  # the windows endpoint exists (400: no such agent)
        with page.expect_response(lambda r: r.url.endswith("/api/sessions/main/windows")) as answer:
            page.locator("#setup-panel .launcher[data-agent=claude]").click()
        assert answer.value.status == 201, answer.value.text()
        assert answer.value.request.post_data_json == {"agent": "claude"}
        wait_until(lambda: not page.locator("#setup-panel").is_visible(), timeout=5, what="panel closed")
        wait_until(lambda: terminal_focused(page), timeout=5, what="terminal focused after launch")

    # A first visit once setup is done: no loading screen at all.
    gemini.state, gemini.ended = StepState.SKIPPED, time.time()
    gemini.reason = "already installed"
    write(app, "done", [claude, gemini], started=now, finished=time.time())
    fresh = open_terminal(browser, app)
    wait_until(lambda: badge(fresh)["state"] == "done", timeout=10, what="done badge")
    assert not loading_shown(fresh)
    assert badge(fresh)["label"] == "agents"
    fresh.locator("#setup-badge").click()
    assert launchers(fresh, "#setup-panel") == ["claude", "gemini"]
    assert steps(fresh, "#setup-panel")["gemini"]["reason"] == "already installed"
