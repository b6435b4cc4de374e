"""tmux's history through the gateway: search endpoint, `scroll` messages, input after a scroll."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from services.gateway import history, protocol
from tests.conftest import Gateway
from tests.helpers import TermClient, async_wait_until


async def connect(gw: Gateway, session: str = "main") -> TermClient:
    client = await TermClient.connect(gw.url, session, gw.token, cols=80, rows=24)
    await client.wait_ready()
    return client


async def fill(client: TermClient, count: int) -> None:
    await client.type(f"seq 1 {count}; echo filled-$((1+1))\r")
    await client.wait_text("filled-2", timeout=30)


def pane_state(gw: Gateway) -> history.HistoryState:
    return history.state(gw.ctx.sessions, "main")


async def test_search_finds_a_line_far_back_in_the_history(gateway: Gateway) -> None:
    client = await connect(gateway)
    await fill(client, 20000)
    response = await gateway.fetch("/api/sessions/main/search?q=15000")
    assert response.code == 200
    result = json.loads(response.body)
    texts = [m["text"] for m in result["matches"]]
    assert texts == ["15000"], texts
    [match] = result["matches"]
    assert result["history"] >= 19_000 and not result["truncated"]
    # The offset, given to `scroll {to}`, puts that very line at the top of the screen.
    await client.send({"type": "scroll", "to": match["offset"]})
    reply = await client.wait_message(protocol.HISTORY)
    assert reply["in_mode"] is True and reply["position"] == match["offset"]
    # Copy mode's top row at position P is the line P above the live screen's top.
    above = f"-{reply['position']}"
    [top] = gateway.ctx.sessions.run("capture-pane", "-p", "-t", "=main:", "-S", above, "-E", above)
    assert top.strip() == "15000"
    client.close()


async def test_search_caps_results_keeping_the_latest(gateway: Gateway) -> None:
    client = await connect(gateway)
    await fill(client, 3000)
    result = json.loads((await gateway.fetch("/api/sessions/main/search?q=1")).body)
    assert result["truncated"] is True
    assert len(result["matches"]) == history.MAX_RESULTS
    assert result["matches"][-1]["text"] == "3000" or "1" in result["matches"][-1]["text"]
    client.close()


@pytest.mark.parametrize(
    "query",
    ["", "q=", "q=%20%20", "q=" + "x" * (history.MAX_QUERY_CHARS + 1), "q=a%00b", "q=%1b%5b2J"],
    ids=["missing", "empty", "blank", "too-long", "nul", "escape"],
)
async def test_bad_queries_are_a_400(gateway: Gateway, query: str) -> None:
    response = await gateway.fetch(f"/api/sessions/main/search?{query}")
    assert response.code == 400
    assert "'q' must be" in json.loads(response.body)["error"]


@pytest.mark.parametrize("name", ["../x", "a;b", "$(id)", "=main"])
async def test_bad_session_names_are_a_400(gateway: Gateway, name: str) -> None:
    response = await gateway.fetch(f"/api/sessions/{quote(name, safe='')}/search?q=x")
    assert response.code == 400


async def test_unknown_session_is_a_404(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/sessions/nope/search?q=x")
    assert response.code == 404


async def test_search_needs_sign_in(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/sessions/main/search?q=x", auth=False)
    assert response.code == 401


async def test_a_scroll_moves_that_many_lines_and_reports_where(gateway: Gateway) -> None:
    client = await connect(gateway)
    await fill(client, 500)
    await client.send({"type": "scroll", "lines": 3})
    first = await client.wait_message(protocol.HISTORY)
    assert first["in_mode"] is True and first["position"] == 3
    assert first["history"] > 400 and first["rows"] == 24
    client.messages.clear()
    await client.send({"type": "scroll", "lines": -3})
    back = await client.wait_message(protocol.HISTORY)
    assert back["position"] == 0 and back["in_mode"] is False  # copy-mode -e: left at the bottom
    client.close()


async def test_typing_after_a_scroll_reaches_the_shell_intact(gateway: Gateway) -> None:
    client = await connect(gateway)
    await fill(client, 500)
    await client.send({"type": "scroll", "lines": 30})
    # Sent at once, without waiting for the answer: the keys must wait for the scroll, not race it.
    await client.type("echo typed-$((20+22))\r")
    await client.wait_text("typed-42")
    await async_wait_until(lambda: not pane_state(gateway).in_mode, what="copy mode left")
    assert "command not found" not in client.text
    client.close()


async def test_typing_after_a_mouse_drag_leaves_copy_mode(gateway: Gateway) -> None:
    client = await connect(gateway)
    await fill(client, 100)
    # A drag in tmux (mouse on) starts copy mode, as a drag in the page does.
    await client.type("\x1b[<0;5;5M\x1b[<32;9;5M\x1b[<32;12;6M")
    await async_wait_until(lambda: pane_state(gateway).in_mode, what="copy mode from the drag")
    await client.type("echo dragged-$((20+22))\r")
    await client.wait_text("dragged-42")
    client.close()


@pytest.mark.parametrize(
    "message",
    [{"lines": "3"}, {"lines": True}, {"lines": 1.5}, {"lines": 10**9}, {"to": -1}],
    ids=["string", "bool", "fraction", "huge", "negative-to"],
)
async def test_bad_scroll_messages_get_an_error(gateway: Gateway, message: dict[str, object]) -> None:
    client = await connect(gateway)
    await client.send({"type": "scroll", **message})
    error = await client.wait_message(protocol.ERROR)
    assert "scroll needs" in error["message"]
    client.close()


async def test_a_program_reading_the_mouse_gets_the_wheel_itself(gateway: Gateway) -> None:
    client = await connect(gateway)
    # Mouse reporting on (SGR), then `cat -v` shows what reaches the program.
    await client.type("printf '\\033[?1000h\\033[?1006h'; stty -echo; cat -v\r")
    await async_wait_until(lambda: pane_state(gateway).app_mouse, what="the program asked for the mouse")
    await client.send({"type": "scroll", "lines": 6})
    reply = await client.wait_message(protocol.HISTORY)
    assert reply["in_mode"] is False
    await client.type("\r")
    await client.wait_text("^[[<64;1;1M^[[<64;1;1M")  # two notches' worth of wheel-up reports
    await client.type("\x03")
    client.close()


async def test_a_full_screen_program_without_mouse_gets_arrow_keys(gateway: Gateway) -> None:
    client = await connect(gateway)
    await client.type("tput smcup; stty -echo; cat -v\r")
    await async_wait_until(lambda: pane_state(gateway).alternate, what="alternate screen")
    await client.send({"type": "scroll", "lines": 2})
    await client.wait_message(protocol.HISTORY)
    await client.type("\r")
    await client.read_until(lambda c: c.text.count("^[[A") + c.text.count("^[OA") >= 2)
    assert not pane_state(gateway).in_mode
    await client.type("\x03")
    client.close()


async def test_without_tmux_history_is_the_pages_own(degraded_gateway: Gateway) -> None:
    client = await TermClient.connect(degraded_gateway.url, "main", degraded_gateway.token)
    hello = await client.wait_message(protocol.HELLO)
    assert hello["history"] == protocol.HISTORY_LOCAL  # the page keeps xterm.js scrollback then
    await client.wait_ready()
    await client.send({"type": "scroll", "lines": 3})
    error = await client.wait_message(protocol.ERROR)
    assert "needs tmux" in error["message"]
    await client.type("echo still-$((40+2))\r")
    await client.wait_text("still-42")
    response = await degraded_gateway.fetch("/api/sessions/main/search?q=still")
    assert response.code == 409
    assert "searched in the page" in json.loads(response.body)["error"]
    client.close()
