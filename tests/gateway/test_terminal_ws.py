"""The WebSocket terminal transport against a real tmux server and real shells."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import struct
import termios

import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError

from services.gateway import protocol
from services.gateway.ptyio import FloodMeter
from services.gateway.terminal import TmuxAttachment
from tests.conftest import Gateway
from tests.helpers import TermClient, async_wait_until


def pty_size(tty: str) -> tuple[int, int]:
    fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY)  # never become this tty's controlling process
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    finally:
        os.close(fd)
    return rows, cols


async def connect(gw: Gateway, session: str = "main", **kwargs: object) -> TermClient:
    client = await TermClient.connect(gw.url, session, gw.token, **kwargs)  # type: ignore[arg-type]
    await client.wait_ready()
    return client


async def test_hello_is_the_first_message(gateway: Gateway) -> None:
    client = await TermClient.connect(gateway.url, "main", gateway.token)
    first = await client.conn.read_message()
    assert isinstance(first, str)
    assert json.loads(first) == {
        "type": "hello",
        "session": "main",
        "protocol": 1,
        "transport": "websocket",
        "history": "tmux",
    }
    client.close()


async def test_input_reaches_the_shell(gateway: Gateway) -> None:
    client = await connect(gateway)
    # The shell computes the marker, so seeing it proves execution rather than the input's echo.
    await client.type("echo $((40+2))done\r")
    await client.wait_text("42done")
    client.close()


async def test_binary_input_frames_reach_the_shell(gateway: Gateway) -> None:
    client = await connect(gateway)
    await client.conn.write_message(b"echo $((50+5))bin\r", binary=True)
    await client.wait_text("55bin")
    client.close()


async def test_resize_changes_the_shell_size(gateway: Gateway) -> None:
    client = await connect(gateway, cols=90, rows=25)
    # `read` parks the shell outside readline, whose SIGWINCH redraw can swallow keys typed in the
    # same instant; the size is printed only after the resize has landed.
    await client.type(
        "echo size=$(tput cols)x$(tput lines); read -r _; echo size=$(tput cols)x$(tput lines)\r"
    )
    await client.wait_text("size=90x25")
    await client.send({"type": "resize", "cols": 132, "rows": 40})
    [tty] = gateway.ctx.sessions._run("display-message", "-p", "-t", "=main:", "#{pane_tty}")
    # tmux applies pane resizes on a timer; wait for the shell's PTY itself to change.
    await async_wait_until(lambda: pty_size(tty) == (40, 132), what="pane PTY 132x40")
    await client.type("\r")
    await client.wait_text("size=132x40")
    client.close()


async def test_split_utf8_arrives_whole(gateway: Gateway) -> None:
    client = await connect(gateway)
    await client.type(
        "for i in $(seq 400); do printf '€ü😀%.0s' 1 2 3 4 5 6 7 8 9 10; done; echo END$((1+1))\r"
    )
    await client.wait_text("END2", timeout=20)
    text = bytes(client.output).decode("utf-8")  # strict: a split sequence anywhere would raise
    assert "€ü😀€ü😀" in text
    client.close()


async def test_ping_gets_pong(gateway: Gateway) -> None:
    client = await connect(gateway)
    await client.send({"type": "ping"})
    await client.wait_message("pong")
    client.close()


async def test_reattach_shows_earlier_output(gateway: Gateway) -> None:
    first = await connect(gateway)
    await first.type("echo $((1000+337))marker\r")
    await first.wait_text("1337marker")
    first.close()
    await first.wait_closed()
    second = await TermClient.connect(gateway.url, "main", gateway.token)
    await second.wait_ready()
    # The replay alone (before `ready`) must hold the marker: it repaints without waiting for tmux.
    assert "1337marker" in second.text
    second.close()


async def test_output_is_sent_without_nagle_delay(gateway: Gateway) -> None:
    # With Nagle on, an echo written while an earlier frame is unacknowledged waits for the
    # browser's delayed ACK: a 40-45 ms stall among the first keystrokes of each connection here.
    client = await connect(gateway)
    [channel] = list(gateway.ctx.channels)
    sock = channel._sink._handler.ws_connection.stream.socket  # type: ignore[attr-defined]
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    client.close()


async def test_two_clients_both_see_output(gateway: Gateway) -> None:
    a = await connect(gateway)
    b = await connect(gateway)
    await a.type("echo $((300+33))both\r")
    await asyncio.gather(a.wait_text("333both"), b.wait_text("333both"))
    a.close()
    b.close()


async def test_acks_release_a_paused_pty(gateway: Gateway) -> None:
    client = await TermClient.connect(gateway.url, "main", gateway.token, auto_ack=False)
    await client.wait_ready()
    # Endless (Ctrl-C below ends it): a finite flood can end before the client has fallen 1 MiB
    # behind, when tmux skips ahead for a slow reader and sends only screens.
    await client.type("yes 0123456789abcdef\r")
    [channel] = list(gateway.ctx.channels)
    await client.read_until(lambda c: channel.paused, timeout=60)
    assert channel.unacked > protocol.HIGH_WATER or channel._sink.backed_up()
    # Drain what was already in flight; while paused and unacked, output must stop growing.
    await asyncio.sleep(0)
    received = len(client.output)
    with pytest.raises(AssertionError):
        await client.read_until(lambda c: len(c.output) > received + 2 * protocol.HIGH_WATER, timeout=1.0)
    assert channel.paused
    await client.send({"type": "ack", "bytes": len(client.output)})
    await async_wait_until(lambda: not channel.paused, what="channel resumed")
    before = len(client.output)
    await client.read_until(lambda c: len(c.output) > before, timeout=10)
    await client.type("\x03")
    client.close()


async def test_a_flood_is_read_in_large_pieces(gateway: Gateway) -> None:
    # tmux writes a flood to its client in pieces of ~700 bytes; a frame per piece cost the gateway
    # and the browser more CPU than tmux's own work (scripts/bench: throughput with a client attached).
    pieces: list[bytes] = []
    closed = asyncio.Event()
    attachment = TmuxAttachment(
        gateway.ctx.sessions, "main", protocol.Resize(120, 40), pieces.append, closed.set, os.environ, set()
    )
    attachment.start()
    try:
        await async_wait_until(lambda: b"$ " in b"".join(pieces) or b"# " in b"".join(pieces), what="prompt")
        first = len(pieces)
        attachment.write(b"seq 1 300000; echo flood-$((6*7))-done\r")
        await async_wait_until(
            lambda: b"flood-42-done" in b"".join(pieces[-3:]), timeout=60, what="flood end"
        )
        sizes = sorted(map(len, pieces[first:]))
        # Measured: ~half the bytes in pieces of 4 KiB or more (the first 32 KiB and tmux's redraws
        # after it skips ahead are small), against under 2 % when every piece is read at once.
        in_large = sum(size for size in sizes if size >= 4096) / sum(sizes)
        assert in_large >= 0.25, f"{len(sizes)} pieces, median {sizes[len(sizes) // 2]} bytes"
    finally:
        attachment.close()


def test_a_flood_is_gathered_and_answers_to_input_are_not() -> None:
    meter = FloodMeter(decay=0.25, limit=32 * 1024)
    # Output of its own at a typing pace (a clock, a progress bar): never held.
    assert not any(meter.should_rest(40, t * 0.03) for t in range(300))
    # Echoes typed back to back, each read 1 ms after its key: a thousand reads a second, not held.
    for t in range(2000):
        meter.input_written(20 + t * 0.002)
        assert not meter.should_rest(40, 20 + t * 0.002 + 0.001)
    # A flood: ~700-byte reads every 0.2 ms cross the limit within a few dozen reads ...
    flood = [meter.should_rest(700, 30 + t * 0.0002) for t in range(100)]
    assert not flood[0] and flood[-1]
    # ... stay over it with the larger reads that follow each rest ...
    assert all(meter.should_rest(40_000, 31 + t * 0.009) for t in range(50))
    # ... and through the 100 ms tmux keeps quiet before redrawing a client that fell behind.
    assert meter.should_rest(5_000, 31.55)
    # Gathered reads of tmux's cursor moves for such a client: few and small, still a flood.
    assert all(meter.should_rest(100, 31.56 + t * 0.009) for t in range(100))
    # Ctrl-C in the middle of it: what answers it goes out at once.
    meter.input_written(32.5)
    assert not meter.should_rest(3_000, 32.51)
    # tmux's stream of tiny cursor moves for a client that fell behind is a flood too.
    meter = FloodMeter(decay=0.25, limit=32 * 1024)
    assert meter.should_rest(9, 0) is False
    assert any(meter.should_rest(9, t * 0.0006) for t in range(1, 300))
    # Quiet for a second: the next output goes out at once.
    assert not meter.should_rest(40, 2)


async def test_session_exit_sends_exit_and_closes_normally(gateway: Gateway) -> None:
    await gateway.ctx.run_blocking(gateway.ctx.sessions.create, "doomed")
    client = await connect(gateway, "doomed")
    await client.type("exit\r")
    await client.wait_message("exit")
    assert await client.wait_closed() == protocol.CLOSE_NORMAL


async def test_missing_session_closes_with_4404(gateway: Gateway) -> None:
    client = await TermClient.connect(gateway.url, "nosuch", gateway.token)
    assert await client.wait_closed() == protocol.CLOSE_NO_SESSION
    assert any(m["type"] == "error" and "nosuch" in m["message"] for m in client.messages)


BAD_MESSAGES = [
    pytest.param("{not json", "not valid JSON", id="malformed-json"),
    pytest.param('"just a string"', "JSON object", id="not-an-object"),
    pytest.param('{"type":"explode"}', "unknown message type", id="unknown-type"),
    pytest.param('{"type":"resize","cols":0,"rows":10}', "cols", id="resize-zero"),
    pytest.param('{"type":"resize","cols":-1,"rows":10}', "cols", id="resize-negative"),
    pytest.param('{"type":"resize","cols":100000,"rows":10}', "cols", id="resize-huge"),
    pytest.param('{"type":"resize","cols":"x","rows":10}', "cols", id="resize-string"),
    pytest.param('{"type":"resize","cols":80,"rows":true}', "rows", id="resize-bool"),
    pytest.param('{"type":"input","data":42}', "data", id="input-not-string"),
    pytest.param('{"type":"ack","bytes":-5}', "ack", id="ack-negative"),
]


@pytest.mark.parametrize(("frame", "error"), BAD_MESSAGES)
async def test_bad_messages_get_a_clear_error_and_the_connection_lives(
    gateway: Gateway, frame: str, error: str
) -> None:
    client = await connect(gateway)
    await client.conn.write_message(frame)
    message = await client.wait_message("error")
    assert error in message["message"]
    await client.type("echo $((7*11))alive\r")
    await client.wait_text("77alive")
    client.close()


async def test_oversized_frame_closes_only_that_connection(gateway: Gateway) -> None:
    client = await connect(gateway)
    with contextlib.suppress(WebSocketClosedError):
        await client.conn.write_message(b"x" * (10 * 1024 * 1024), binary=True)
    # 1009 "message too big"; if the server's close races the upload the client sees a reset instead.
    assert await client.wait_closed() in (1009, None)
    other = await connect(gateway)
    await other.type("echo $((9*9))fine\r")
    await other.wait_text("81fine")
    other.close()


@pytest.mark.parametrize(
    "name",
    ["..%2Fx", "a;b", "%24(id)", "x" * 200, "a%20b", "%E2%82%AC"],
    ids=["dotdot", "semicolon", "subst", "long", "space", "unicode"],
)
async def test_hostile_session_names_are_refused_before_upgrade(gateway: Gateway, name: str) -> None:
    with pytest.raises(HTTPClientError) as err:
        await TermClient.connect(gateway.url, name, gateway.token)
    assert err.value.code == 400


@pytest.mark.parametrize("query", ["cols=0&rows=10", "cols=x&rows=10", "cols=100000&rows=5", "cols=80"])
async def test_bad_initial_size_is_a_400(gateway: Gateway, query: str) -> None:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = gateway.url.replace("http", "ws") + f"/api/sessions/main/ws?{query}"
    with pytest.raises(HTTPClientError) as err:
        await websocket_connect(HTTPRequest(url, headers={"Authorization": f"Bearer {gateway.token}"}))
    assert err.value.code == 400
