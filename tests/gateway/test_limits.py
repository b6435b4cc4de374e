"""Limits with clear answers: session and window counts, the memory guard, connection caps."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.config import ConfigError, Settings
from services.gateway import protocol
from services.gateway.__main__ import build_policy
from services.limits import Limits
from services.tmux import TmuxSessions
from tests.conftest import Gateway, Stack, serve_gateway
from tests.fake_memory import FakeContainer
from tests.helpers import TermClient, async_wait_until


@contextlib.asynccontextmanager
async def limited_gateway(stack: Stack, tmux: TmuxSessions, **env: str) -> AsyncIterator[Gateway]:
    stack.env.update(env)
    async with serve_gateway(stack, tmux, build_policy(stack.settings)) as gw:
        yield gw


async def api(gw: Gateway, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    if body is None:
        response = await gw.fetch(path, method)
    else:
        response = await gw.fetch(path, method, body=json.dumps(body))
    return response.code, json.loads(response.body) if response.body else None


async def test_the_session_limit_is_a_429_naming_it(stack: Stack, tmux: TmuxSessions) -> None:
    async with limited_gateway(stack, tmux, CODING_AGENTS_MAX_SESSIONS="2") as gw:
        assert (await api(gw, "/api/sessions", "POST", {"name": "two"}))[0] == 201
        code, body = await api(gw, "/api/sessions", "POST", {"name": "three"})
        assert (code, body) == (429, {"error": "session limit (2) reached: close one"})
        code, body = await api(gw, "/api/sessions", "POST", {})
        assert code == 429
        # An existing name still says so: the page's "start it again" treats 409 as done.
        assert (await api(gw, "/api/sessions", "POST", {"name": "two"}))[0] == 409
        assert [s["name"] for s in (await api(gw, "/api/sessions"))[1]["sessions"]] == ["main", "two"]
        assert (await api(gw, "/api/sessions/two", "DELETE"))[0] == 204
        assert (await api(gw, "/api/sessions", "POST", {"name": "three"}))[0] == 201


async def test_the_default_limit_is_twenty(gateway: Gateway) -> None:
    for n in range(19):
        assert (await api(gateway, "/api/sessions", "POST", {"name": f"s{n}"}))[0] == 201
    assert await api(gateway, "/api/sessions", "POST", {}) == (
        429,
        {"error": "session limit (20) reached: close one"},
    )


async def test_agent_windows_have_a_per_session_cap(stack: Stack, tmux: TmuxSessions) -> None:
    async with limited_gateway(stack, tmux, CODING_AGENTS_MAX_WINDOWS="2") as gw:
        assert (await api(gw, "/api/sessions/main/windows", "POST", {"agent": "claude"}))[0] == 201
        code, body = await api(gw, "/api/sessions/main/windows", "POST", {"agent": "gemini"})
        assert (code, body) == (429, {"error": "window limit (2) reached in main: close one"})
        windows = tmux._run("list-windows", "-t", "=main:", "-F", "#{window_name}")
        assert len(windows) == 2
        # Another session has its own windows.
        assert (await api(gw, "/api/sessions", "POST", {"name": "other"}))[0] == 201
        assert (await api(gw, "/api/sessions/other/windows", "POST", {"agent": "gemini"}))[0] == 201


async def test_the_memory_guard_sizes_the_floor_from_the_agent(stack: Stack, tmux: TmuxSessions) -> None:
    container = FakeContainer(stack.root / "fakeroot", limit_mib=6144, available_mib=1000)
    async with limited_gateway(stack, tmux, CODING_AGENTS_MEMORY_ROOT=str(container.root)) as gw:
        code, body = await api(gw, "/api/sessions/main/windows", "POST", {"agent": "opencode"})
        assert code == 429
        assert body["error"] == (
            "not enough memory to start OpenCode: 1000 MiB available, it needs 1256 MiB "
            "(1000 for the agent, 256 kept free); close a session or an agent"
        )
        # Claude Code's footprint (300 MiB) plus the floor fits in 1000 MiB.
        assert (await api(gw, "/api/sessions/main/windows", "POST", {"agent": "claude"}))[0] == 201
        assert (await api(gw, "/api/sessions", "POST", {"name": "fits"}))[0] == 201

        _, listing = await api(gw, "/api/sessions")
        assert listing["memory"] == {
            "limit_mb": 6144,
            "used_mb": 5144,
            "available_mb": 1000,
            "available_percent": 16.3,
            "low": False,
            "source": "cgroup v2",
        }
        container.set_available(200)  # the container fills up
        code, body = await api(gw, "/api/sessions", "POST", {"name": "nope"})
        assert (code, body["error"]) == (
            429,
            "not enough memory for a new session: 200 MiB available, 256 MiB must stay free; "
            "close a session or an agent",
        )
        _, listing = await api(gw, "/api/sessions")
        assert listing["memory"]["low"] is True and listing["memory"]["available_mb"] == 200


async def test_a_floor_of_zero_turns_the_guard_off(stack: Stack, tmux: TmuxSessions) -> None:
    container = FakeContainer(stack.root / "fakeroot", available_mib=10)
    async with limited_gateway(
        stack, tmux, CODING_AGENTS_MEMORY_ROOT=str(container.root), CODING_AGENTS_MEMORY_FLOOR_MB="0"
    ) as gw:
        assert (await api(gw, "/api/sessions", "POST", {"name": "anyway"}))[0] == 201
        assert (await api(gw, "/api/sessions/main/windows", "POST", {"agent": "opencode"}))[0] == 201


async def test_the_session_list_reads_this_machines_memory(gateway: Gateway) -> None:
    _, listing = await api(gateway, "/api/sessions")
    assert listing["memory"]["available_mb"] > 0


async def poll_open(gw: Gateway, session: str) -> tuple[int, Any]:
    return await api(gw, f"/api/sessions/{session}/poll?cols=80&rows=24", "POST")


async def test_connection_caps_per_session_and_in_total(stack: Stack, tmux: TmuxSessions) -> None:
    env = {"CODING_AGENTS_MAX_CONNECTIONS_PER_SESSION": "2", "CODING_AGENTS_MAX_CONNECTIONS": "3"}
    async with limited_gateway(stack, tmux, **env) as gw:
        assert (await api(gw, "/api/sessions", "POST", {"name": "b"}))[0] == 201
        first = await TermClient.connect(gw.url, "main", gw.token)
        await first.wait_ready()
        code, body = await poll_open(gw, "main")
        assert code == 201
        second_conn = body["conn"]

        # A third connection to main: the WebSocket closes with 4429, long-poll gets 429.
        third = await TermClient.connect(gw.url, "main", gw.token)
        assert await third.wait_closed() == protocol.CLOSE_TOO_MANY
        assert third.conn.close_reason == "too many terminal connections to main (2 open): close a tab"
        assert await poll_open(gw, "main") == (
            429,
            {"error": "too many terminal connections to main (2 open): close a tab"},
        )
        assert len(gw.ctx.attachments) == 2  # refused connections never started a tmux client

        # The app-wide cap: one more to b fits, the next does not.
        other = await TermClient.connect(gw.url, "b", gw.token)
        await other.wait_ready()
        refused = await TermClient.connect(gw.url, "b", gw.token)
        assert await refused.wait_closed() == protocol.CLOSE_TOO_MANY
        assert refused.conn.close_reason == "too many terminal connections (3) open: close some tabs"
        assert (await poll_open(gw, "b"))[0] == 429

        # Closing a connection (either transport) frees its place.
        assert (await api(gw, f"/api/sessions/main/poll/{second_conn}", "DELETE"))[0] == 204
        assert (await poll_open(gw, "main"))[0] == 201
        first.close()
        await first.wait_closed()
        await async_wait_until(lambda: gw.ctx.connections.per_session["main"] == 1, what="first released")
        again = await TermClient.connect(gw.url, "main", gw.token)
        await again.wait_ready()
        assert gw.ctx.connections.total == 3
        for client in (again, other):
            client.close()
            await client.wait_closed()


async def test_without_tmux_an_agent_counts_as_a_session(degraded_gateway: Gateway) -> None:
    # A PTY has no windows: the agent gets a session of its own, so the session limit applies.
    degraded_gateway.ctx.admission.limits = Limits(max_sessions=1)
    code, body = await api(degraded_gateway, "/api/sessions/main/windows", "POST", {"agent": "gemini"})
    assert (code, body) == (429, {"error": "session limit (1) reached: close one"})
    degraded_gateway.ctx.admission.limits = Limits(max_sessions=2)
    assert (await api(degraded_gateway, "/api/sessions/main/windows", "POST", {"agent": "gemini"}))[0] == 201


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CODING_AGENTS_MAX_SESSIONS", "0", "CODING_AGENTS_MAX_SESSIONS must be a whole number from 1"),
        ("CODING_AGENTS_MAX_CONNECTIONS", "many", "CODING_AGENTS_MAX_CONNECTIONS must be a whole number"),
        (
            "CODING_AGENTS_MEMORY_FLOOR_MB",
            "-1",
            "CODING_AGENTS_MEMORY_FLOOR_MB must be a whole number from 0",
        ),
        ("CODING_AGENTS_MEMORY_WARN_PERCENT", "150", "from 0 to 100, got '150'"),
    ],
    ids=["zero-sessions", "word", "negative-floor", "percent"],
)
def test_a_bad_limit_setting_names_the_variable(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({"HOME": str(tmp_path), name: value})
