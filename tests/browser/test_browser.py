"""Debian Chromium driven by Playwright against the app started with scripts/run."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, WebSocketRoute

from tests.conftest import Stack
from tests.e2e.conftest import RunningApp, start_app, stop_app
from tests.helpers import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def app(stack: Stack) -> Iterator[RunningApp]:
    running = start_app(stack)
    yield running
    stop_app(running)


@pytest.fixture
def browser(chromium: Browser) -> Iterator[Browser]:
    """The module's Chromium; every page and context a test opened is closed after it."""
    yield chromium
    for context in chromium.contexts:
        context.close()


def screen(page: Page) -> str:
    return str(
        page.evaluate(
            """() => {
              const b = window.__terminal.term.buffer.active; const out = [];
              for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
              return out.join('\\n');
            }"""
        )
    )


def indicator(page: Page) -> dict[str, str]:
    return dict(
        page.evaluate(
            """() => { const c = document.getElementById('connection');
                       return {state: c.dataset.state, transport: c.dataset.transport}; }"""
        )
    )


def record_states(page: Page) -> None:
    """Keep every indicator change of the page's life, for a failure to tell what happened."""
    page.add_init_script(
        """window.__states = [];
           document.addEventListener('DOMContentLoaded', () => {
             const c = document.getElementById('connection');
             new MutationObserver(() => window.__states.push(
                 `${Math.round(performance.now())}ms ${c.dataset.state}/${c.dataset.transport}`))
               .observe(c, {attributes: true});
           });"""
    )


def states(page: Page) -> list[str]:
    return list(page.evaluate("() => window.__states"))


def open_terminal(browser: Browser, app: RunningApp, query: str = "", no_websocket: bool = False) -> Page:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    if no_websocket:
        page.add_init_script("delete window.WebSocket;")
    page.goto(f"{app.url}/?token={app.stack.token}{query}")
    assert "token=" not in page.url  # the token left the address bar
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="connected")
    assert not errors, errors
    return page


@pytest.fixture
def page(browser: Browser, app: RunningApp) -> Iterator[Page]:
    """A terminal page connected to `app`, closed after the test (for the files that share `app`)."""
    opened = open_terminal(browser, app)
    yield opened
    opened.close()


def type_and_see(page: Page, command: str, expected: str) -> None:
    page.locator(".xterm").click()
    page.keyboard.type(command)
    page.keyboard.press("Enter")
    wait_until(lambda: expected in screen(page), timeout=15, what=f"{expected!r} on screen")


def test_type_reload_and_see_it_again(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    assert indicator(page)["transport"] == "websocket"
    type_and_see(page, "echo hello $((6*7))", "hello 42")
    page.reload()
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="reconnected after reload")
    wait_until(lambda: "hello 42" in screen(page), timeout=10, what="screen restored after reload")


def test_page_reconnects_by_itself_after_a_gateway_restart(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app)
    type_and_see(page, "echo before $((2*21))", "before 42")
    # Record every indicator change: the reconnect can finish before a poll from here would see it.
    page.evaluate(
        """() => { window.__states = [];
                   new MutationObserver(() => window.__states.push(
                       document.getElementById('connection').dataset.state))
                     .observe(document.getElementById('connection'), {attributes: true}); }"""
    )
    assert "gateway: started" in app.ctl("restart", "gateway")
    wait_until(
        lambda: (
            page.evaluate("window.__states").count("connected") >= 1
            and indicator(page)["state"] == "connected"
        ),
        timeout=30,
        what="reconnected by itself",
    )
    states = page.evaluate("window.__states")
    assert any(state != "connected" for state in states), states
    type_and_see(page, "echo after $((3*14))", "after 42")
    assert "before 42" in screen(page)
    assert indicator(page)["transport"] == "websocket"


def test_page_is_back_on_websocket_after_each_gateway_kill(browser: Browser, app: RunningApp) -> None:
    # The gateway is down for ~0.3 s (the watchdog): WebSocket attempts fail meanwhile, and the page
    # must read that as a restart, not as a proxy blocking WebSockets.
    page = open_terminal(browser, app)
    for round_ in range(3):
        gateway = app.program_pid("gateway")
        os.kill(gateway, signal.SIGKILL)
        wait_until(lambda: indicator(page)["state"] != "connected", timeout=10, what="outage noticed")
        wait_until(lambda: indicator(page)["state"] == "connected", timeout=15, what="reconnected")
        assert indicator(page)["transport"] == "websocket", round_
        type_and_see(page, f"echo round {round_}-$((6*7))", f"round {round_}-42")


def test_websocket_failing_while_nothing_answers_is_a_restart_not_a_blocked_socket(
    browser: Browser, app: RunningApp
) -> None:
    # The moment that misled the page: WebSocket attempts failed while the gateway was down, and the
    # long-poll that followed came through because the gateway was back by then. Played here by
    # routing: two WebSocket attempts fail while /health does not answer, then all is well.
    page = browser.new_page()
    live: list[WebSocketRoute] = []
    failures_left = [0]

    def on_websocket(ws: WebSocketRoute) -> None:
        if failures_left[0] > 0:
            failures_left[0] -= 1
            ws.close(code=1011, reason="gateway down")
        else:
            ws.connect_to_server()
            live.append(ws)

    def on_health(route: Route) -> None:
        if failures_left[0] > 0:
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route_web_socket("**/api/sessions/*/ws*", on_websocket)
    page.route("**/health", on_health)
    record_states(page)
    page.goto(f"{app.url}/?token={app.stack.token}")
    # On a loaded machine the first WebSocket can miss its hello deadline and be handed over from
    # long-poll later: close it only once it is the live transport.
    on_websocket_live = {"state": "connected", "transport": "websocket"}
    wait_until(lambda: indicator(page) == on_websocket_live, timeout=15, what="connected on WebSocket")
    failures_left[0] = 2
    live[-1].close(code=4500, reason="the terminal client stopped")
    # Route handlers run only while this thread is inside a Playwright call: poll the page.
    wait_until(lambda: indicator(page) and failures_left[0] == 0, timeout=15, what="both attempts made")
    wait_until(
        lambda: indicator(page) == on_websocket_live,
        timeout=15,
        what=f"reconnected on WebSocket: {states(page)}",
    )
    try:
        type_and_see(page, "echo still $((6*7))", "still 42")
    except AssertionError as failed:
        raise AssertionError(f"{failed}; states {states(page)}; screen {screen(page)!r}") from None


def test_a_terminal_query_answered_after_its_connection_closed_is_not_typed_into_the_next(
    browser: Browser, app: RunningApp
) -> None:
    """tmux asks the terminal's attributes (DA2, `ESC[>c`) at attach; xterm.js answers once it has
    parsed the question, which can be after that connection closed. Kept for the reconnect like a
    typed key, the answer reached the next tmux client, which had its own and read this one as keys:
    `0;276;0c` typed into the shell. Played here by closing the socket while a query waits behind
    a large write that xterm.js parses across several frames."""
    page = browser.new_page()
    live: list[WebSocketRoute] = []

    def on_websocket(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        live.append(ws)

    page.route_web_socket("**/api/sessions/*/ws*", on_websocket)
    record_states(page)
    page.goto(f"{app.url}/?token={app.stack.token}")
    wait_until(lambda: indicator(page) == {"state": "connected", "transport": "websocket"}, timeout=15)
    type_and_see(page, "echo first $((6*7))", "first 42")  # the first client has had its answers
    first = live[-1]
    first.send(b"\x1b[2J" + b"~" * (4 << 20))  # 4 MiB: xterm.js parses it over several frames
    first.send(b"\x1b[>c\x1b[c\x1b[6n")  # DA2, DA1 and a cursor position report, as tmux asks
    first.close(code=4500, reason="the terminal client stopped")
    # Route handlers run only while this thread is inside a Playwright call: poll the page.
    wait_until(
        lambda: indicator(page)["state"] == "connected" and len(live) >= 2, timeout=15, what="reconnected"
    )
    try:
        type_and_see(page, "echo second $((6*7))", "second 42")
    except AssertionError as failed:
        raise AssertionError(f"{failed}; states {states(page)}; screen {screen(page)!r}") from None
    shown = screen(page)
    assert "276" not in shown and "command not found" not in shown, shown


def test_long_poll_fallback_when_websocket_is_unavailable(browser: Browser, app: RunningApp) -> None:
    page = open_terminal(browser, app, no_websocket=True)
    assert indicator(page)["transport"] == "longpoll"
    type_and_see(page, "echo polled $((40+2))", "polled 42")
