"""Degraded mode: no tmux, so the gateway owns the shells' PTYs; same REST and wire protocol."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

from services import tmux_install
from services.gateway import protocol
from services.gateway.__main__ import build_policy
from services.gateway.context import GatewayContext
from services.gateway.ptys import RING_BYTES
from services.gateway.terminals import GRACE_SECONDS, SERVER_DOWN, Terminals
from services.tmux import TmuxSessions
from tests.conftest import Gateway, Stack
from tests.gateway.test_longpoll import PollClient
from tests.helpers import TermClient, async_wait_until, free_port, start_tmuxd


async def connect(gw: Gateway, session: str = "main", **kwargs: object) -> TermClient:
    client = await TermClient.connect(gw.url, session, gw.token, **kwargs)  # type: ignore[arg-type]
    await client.wait_ready()
    return client


async def api(gw: Gateway, path: str, method: str = "GET", body: object = None) -> tuple[int, object]:
    response = await gw.fetch(path, method, body=json.dumps(body) if body is not None else None)
    return response.code, json.loads(response.body) if response.body else None


async def pids_from(client: TermClient, *names: str) -> list[int]:
    """Pids a shell printed as NAME=pid (computed by the shell, not echoed keystrokes)."""
    found: list[int] = []
    for name in names:
        pattern = re.compile(rf"{name}=(\d+)\s")
        await client.read_until(lambda c: pattern.search(c.text) is not None)  # noqa: B023  # awaited here
        match = pattern.search(client.text)
        assert match is not None
        found.append(int(match.group(1)))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


async def test_health_says_degraded_with_the_install_failure_and_no_secret(
    degraded_gateway: Gateway, stack: Stack
) -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}/tmux.gz?token=s3cret"  # nothing listens there
    env = {**stack.env, "CODING_AGENTS_TMUX_URL": url, "CODING_AGENTS_TMUX_SHA256": "a" * 64}
    assert tmux_install.main([], env=env) == 1
    degraded_gateway.ctx.terminals.check()
    health = json.loads((await degraded_gateway.fetch("/health", auth=False)).body)
    assert health["terminal"] == "degraded"
    reason = health["terminal_reason"]
    bare = url.split("?")[0].replace("user:hunter2@", "")
    assert f"cannot reach {bare} (" in reason
    assert tmux_install.FIX in reason
    assert "s3cret" not in reason and "hunter2" not in reason
    code, listing = await api(degraded_gateway, "/api/sessions")
    assert code == 200 and isinstance(listing, dict)
    assert listing["terminal"] == "degraded" and listing["terminal_reason"] == reason
    assert [(s["name"], s["degraded"]) for s in listing["sessions"]] == [("main", True)]


async def test_without_an_install_record_the_reason_names_the_missing_binary(
    degraded_gateway: Gateway,
) -> None:
    health = json.loads((await degraded_gateway.fetch("/health", auth=False)).body)
    assert health["terminal"] == "degraded"
    assert health["terminal_reason"].startswith(f"no tmux at {degraded_gateway.ctx.settings.tmux_bin}; ")


async def test_typing_reaches_a_shell_on_the_gateways_own_pty(degraded_gateway: Gateway) -> None:
    client = await TermClient.connect(degraded_gateway.url, "main", degraded_gateway.token)
    first = await client.conn.read_message()
    hello = {"type": "hello", "session": "main", "protocol": 1, "transport": "websocket", "history": "local"}
    assert json.loads(str(first)) == hello
    await client.wait_ready()
    await client.type("echo $((40+2))done; echo TMUX=${TMUX:-none}\r")
    await client.wait_text("42done")
    await client.wait_text("TMUX=none")  # not in tmux: this shell is the gateway's child
    await client.send({"type": "ping"})
    await client.wait_message("pong")
    client.close()


async def test_a_reloaded_page_gets_the_same_shell_and_its_recent_output(degraded_gateway: Gateway) -> None:
    first = await connect(degraded_gateway)
    await first.type("echo SH=$$; echo $((1000+337))marker\r")
    [shell] = await pids_from(first, "SH")
    await first.wait_text("1337marker")
    first.close()
    await first.wait_closed()
    second = await TermClient.connect(degraded_gateway.url, "main", degraded_gateway.token)
    await second.wait_ready()
    assert "1337marker" in second.text  # in the replay, before `ready`
    await second.type("echo SH=$$\r")
    await second.read_until(lambda c: c.text.count(f"SH={shell}") >= 2)
    # Two clients share the PTY: both see what either types.
    third = await connect(degraded_gateway)
    await second.type("echo $((300+33))both\r")
    await asyncio.gather(second.wait_text("333both"), third.wait_text("333both"))
    second.close()
    third.close()


async def test_the_replay_is_bounded(degraded_gateway: Gateway) -> None:
    client = await connect(degraded_gateway)
    await client.type("seq 1 200000; echo END$((2*3))\r")
    await client.wait_text("END6", timeout=30)
    client.close()
    again = await connect(degraded_gateway)
    assert len(again.output) <= RING_BYTES + 16
    assert "\r\n199999\r\nEND6" in again.text.replace("200000\r\n", "")
    # The oldest output is gone, and what is kept starts at a line, not inside one.
    assert "\r\n100\r\n" not in again.text
    first_line = again.text.split("\r\n", 1)[0]
    assert first_line.isdigit() and int(first_line) > 100_000 and str(int(first_line) - 1) not in again.text
    again.close()


async def test_resize_reaches_the_shell(degraded_gateway: Gateway) -> None:
    client = await connect(degraded_gateway, cols=90, rows=25)
    size = "echo size=$(tput cols)x$(tput lines)"
    await client.type(f"{size}; read -r _; {size}\r")
    await client.wait_text("size=90x25")
    await client.send({"type": "resize", "cols": 132, "rows": 40})
    await client.send({"type": "ping"})  # answered after the resize was applied
    await client.wait_message("pong")
    await client.type("\r")
    await client.wait_text("size=132x40")
    client.close()


async def test_exit_ends_the_session_with_exit_and_1000(degraded_gateway: Gateway) -> None:
    code, _ = await api(degraded_gateway, "/api/sessions", "POST", {"name": "doomed"})
    assert code == 201
    client = await connect(degraded_gateway, "doomed")
    await client.type("exit\r")
    await client.wait_message("exit")
    assert await client.wait_closed() == protocol.CLOSE_NORMAL
    assert (await degraded_gateway.fetch("/api/sessions/doomed")).code == 404
    missing = await TermClient.connect(degraded_gateway.url, "doomed", degraded_gateway.token)
    assert await missing.wait_closed() == protocol.CLOSE_NO_SESSION


async def test_delete_kills_the_whole_process_group(degraded_gateway: Gateway) -> None:
    body = {"name": "victim", "cols": 100, "rows": 30}
    code, created = await api(degraded_gateway, "/api/sessions", "POST", body)
    assert code == 201 and isinstance(created, dict) and created["session"]["degraded"] is True
    assert (await api(degraded_gateway, "/api/sessions", "POST", {"name": "victim"}))[0] == 409
    client = await connect(degraded_gateway, "victim")
    # A background job that ignores SIGHUP would outlive a hangup of the terminal alone.
    await client.type("trap '' HUP; sleep 1000 & echo BG=$! SH=$$ \r")
    shell, background = await pids_from(client, "SH", "BG")
    assert (await degraded_gateway.fetch("/api/sessions/victim", "DELETE")).code == 204
    for pid in (shell, background):
        await async_wait_until(lambda p=pid: not alive(p), what=f"pid {pid} gone")
    assert await client.wait_closed() == protocol.CLOSE_NORMAL
    assert (await degraded_gateway.fetch("/api/sessions/victim")).code == 404
    assert (await degraded_gateway.fetch("/api/sessions/victim", "DELETE")).code == 404


async def test_a_flood_pauses_the_shell_until_acked(degraded_gateway: Gateway) -> None:
    client = await TermClient.connect(degraded_gateway.url, "main", degraded_gateway.token, auto_ack=False)
    await client.wait_ready()
    await client.type("seq 1 3000000\r")
    [channel] = list(degraded_gateway.ctx.channels)
    await client.read_until(lambda c: channel.paused, timeout=30)
    await asyncio.sleep(0)
    received = len(client.output)
    # Paused: the PTY is not read, so the shell blocks and nothing more arrives.
    try:
        await client.read_until(lambda c: len(c.output) > received + 2 * protocol.HIGH_WATER, timeout=1.0)
    except AssertionError:
        pass
    else:
        raise AssertionError("output kept coming while paused")
    assert channel.paused
    # Acking (and reading what was still in flight) lets the shell go on.
    await client.send({"type": "ack", "bytes": len(client.output)})
    client.auto_ack = True
    await client.read_until(lambda c: not channel.paused, timeout=10)
    before = len(client.output)
    await client.read_until(lambda c: len(c.output) > before + 2 * protocol.HIGH_WATER, timeout=10)
    await client.type("\x03")
    client.close()


async def test_long_poll_types_reads_and_reattaches(degraded_gateway: Gateway) -> None:
    client = await PollClient.open(degraded_gateway)
    await client.poll()
    assert client.messages[0]["type"] == "hello" and client.messages[0]["transport"] == "longpoll"
    while not any(m["type"] == "ready" for m in client.messages):
        await client.poll()
    assert await client.send({"type": "input", "data": "echo $((20+3))poll\r"}) == 204
    await client.poll_until_text("23poll")
    assert await client.send({"type": "resize", "cols": 70, "rows": 20}, {"type": "ack", "bytes": 9}) == 204
    assert (await degraded_gateway.fetch(client.base, "DELETE")).code == 204
    second = await PollClient.open(degraded_gateway)
    await second.poll_until_text("23poll", polls=3)


async def test_a_launcher_opens_the_agent_in_a_session_of_its_own(degraded_gateway: Gateway) -> None:
    code, body = await api(degraded_gateway, "/api/sessions/main/windows", "POST", {"agent": "gemini"})
    assert code == 201, body
    assert body == {"window": {"session": "gemini-1", "index": 0, "name": "gemini"}}
    code, listing = await api(degraded_gateway, "/api/sessions")
    assert isinstance(listing, dict)
    assert [(s["name"], s["degraded"]) for s in listing["sessions"]] == [("main", True), ("gemini-1", True)]
    client = await connect(degraded_gateway, "gemini-1")
    await client.wait_text("gemini")  # the launch command was typed into its shell
    client.close()
    code, _ = await api(degraded_gateway, "/api/sessions/nope/windows", "POST", {"agent": "gemini"})
    assert code == 404


async def test_gateway_shutdown_kills_every_shell(degraded_gateway: Gateway) -> None:
    client = await connect(degraded_gateway)
    await client.type("trap '' HUP; sleep 1000 & echo BG=$! SH=$$ \r")
    pids = await pids_from(client, "SH", "BG")
    await degraded_gateway.ctx.close_all()
    # The shell ignores SIGHUP too (the trap): SIGKILL, sent before close_all returns, ends both.
    await async_wait_until(lambda: not any(map(alive, pids)), timeout=2, what="shell and job gone")
    client.close()
    assert (await degraded_gateway.fetch("/api/sessions/main")).code == 404


def install_system_tmux_at(link: Path, stack: Stack) -> subprocess.Popen[bytes]:
    link.parent.mkdir()
    system_tmux = shutil.which("tmux")
    assert system_tmux is not None
    link.symlink_to(system_tmux)
    return start_tmuxd(stack.env)


async def test_once_tmux_answers_new_sessions_live_in_tmux(degraded_gateway: Gateway, stack: Stack) -> None:
    gw = degraded_gateway
    old = await connect(gw)
    # tmux arrives where CODING_AGENTS_TMUX points (as the setup step installs it), and its server starts.
    link = Path(stack.env["CODING_AGENTS_TMUX"])
    tmuxd = await gw.ctx.run_blocking(install_system_tmux_at, link, stack)
    try:
        await async_wait_until(
            lambda: gw.ctx.sessions.is_running(), timeout=10, what="tmux server"
        )  # no check() here: create() looks again by itself
        code, created = await api(gw, "/api/sessions", "POST", {"name": "fresh"})
        assert code == 201 and isinstance(created, dict) and created["session"]["degraded"] is False
        assert gw.ctx.sessions.exists("fresh")
        health = json.loads((await gw.fetch("/health", auth=False)).body)
        assert health["terminal"] == "tmux" and health["terminal_reason"] == ""
        code, listing = await api(gw, "/api/sessions")
        assert isinstance(listing, dict)
        assert [(s["name"], s["degraded"]) for s in listing["sessions"]] == [("main", True), ("fresh", False)]
        # The degraded shell keeps running; the tmux one works over the same protocol.
        await old.type("echo $((5*5))still\r")
        await old.wait_text("25still")
        fresh = await connect(gw, "fresh")
        await fresh.type("echo TMUX=${TMUX:+set}\r")
        await fresh.wait_text("TMUX=set")
        fresh.close()
        old.close()
    finally:
        kill = [str(link), "-S", str(stack.settings.tmux_socket), "kill-server"]
        await gw.ctx.run_blocking(subprocess.run, kill)
        await gw.ctx.run_blocking(tmuxd.wait, 10)


def test_a_tmux_server_that_never_answers_degrades_after_the_grace(stack: Stack) -> None:
    settings = stack.settings  # tmux is on PATH, but no server runs on the socket
    ctx = GatewayContext(
        settings,
        TmuxSessions.for_socket(settings.tmux_socket, settings.tmux_bin),
        build_policy(settings),
        stack.env,
    )
    now = [100.0]
    terminals = Terminals(settings, ctx.terminals.tmux, ctx.terminals.ptys, ctx.run_blocking, lambda: now[0])
    assert terminals.mode == "tmux"  # starting: tmux gets its grace period
    now[0] += GRACE_SECONDS - 1
    terminals.check()
    assert terminals.mode == "tmux"
    now[0] += 2
    terminals.check()
    assert terminals.mode == "degraded" and terminals.reason.startswith(SERVER_DOWN)
    ctx.executor.shutdown()
