"""No tmux to be had: scripts/run starts the app degraded, the terminal works, the platform log says why;
the page's Retry of the "tmux" step brings tmux in without a restart, for new sessions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import Stack
from tests.e2e.conftest import TMUX_ASSET, RunningApp, start_app, stop_app, without_tmux
from tests.e2e.test_setup_supervised import api
from tests.helpers import FileServer, TermClient, gzipped_system_tmux, wait_until

pytestmark = pytest.mark.slow
REGISTRY = "tools:\n  tmux:\n    title: tmux\n    kind: builtin\n    run: tmux\n    timeout: 60\n"


@pytest.fixture
def degraded_app(stack: Stack) -> Iterator[tuple[RunningApp, int]]:
    port = without_tmux(stack)
    registry = stack.root / "agents.yaml"
    registry.write_text(REGISTRY)
    stack.env.update(CODING_AGENTS_SETUP="on", CODING_AGENTS_REGISTRY=str(registry))
    app = start_app(stack, tmux=False)
    yield app, port
    stop_app(app)


async def echo_in(app: RunningApp, session: str, marker: int) -> str:
    client = await TermClient.connect(app.url, session, app.stack.token)
    await client.wait_ready()
    await client.type(f"echo $(({marker}+1))seen; echo TMUX=${{TMUX:-none}}\r")
    await client.wait_text(f"{marker + 1}seen")
    await client.wait_text("TMUX=")
    client.close()
    return client.text


def tmux_step(app: RunningApp) -> dict[str, object]:
    steps = api(app, "/api/setup-status")[1]["steps"]
    return dict(next(s for s in steps if s["id"] == "tmux"))


def wait_for_step(app: RunningApp, state: str) -> dict[str, object]:
    try:
        return wait_until(lambda: s if (s := tmux_step(app))["state"] == state else None, timeout=60)
    except AssertionError:
        raise AssertionError(f"tmux step not {state}: {tmux_step(app)}\n{app.log()}") from None


def test_degraded_start_then_tmux_from_the_pages_retry(
    degraded_app: tuple[RunningApp, int], stack: Stack
) -> None:
    app, port = degraded_app
    url = f"http://127.0.0.1:{port}{TMUX_ASSET}"
    health = json.loads(urllib.request.urlopen(app.url + "/health", timeout=5).read())
    assert health["terminal"] == "degraded"
    assert health["terminal_reason"].startswith(f"cannot reach {url} (")
    # The terminal works, on a shell the gateway owns.
    assert "TMUX=none" in asyncio.run(echo_in(app, "main", 41))
    # One line on the platform log (supervisord's stdout), with the reason and the fix.
    run_out = (stack.root / "run.out").read_text()
    lines = [ln for ln in run_out.splitlines() if "tmux unavailable" in ln]
    assert lines == [
        f"[coding-agents] tmux unavailable: {health['terminal_reason'].split('; ')[0]}; the terminal runs "
        "without tmux (shells end when the web process restarts); set CODING_AGENTS_TMUX_URL and "
        'CODING_AGENTS_TMUX_SHA256, allow github.com, or retry "tmux" on the page'
    ], run_out
    # tmux exited as expected (no FATAL), and setup's tmux step failed with the same reason.
    wait_until(lambda: "EXITED" in app.ctl("status", "tmux"), timeout=20, what="tmux EXITED")
    failed = wait_for_step(app, "failed")
    assert str(failed["reason"]).startswith(f"cannot reach {url} (")
    # The step's status is written before the setup program exits: a Retry meanwhile is a 409.
    wait_until(lambda: "EXITED" in app.ctl("status", "setup"), timeout=20, what="setup EXITED")

    # The URL answers now: the page's Retry installs tmux and starts its program.
    payload, _ = gzipped_system_tmux()
    with FileServer({TMUX_ASSET: payload}, port=port):
        assert api(app, "/api/setup/retry", "POST", {"step": "tmux"})[0] == 202
        wait_for_step(app, "ok")
    code, created = api(app, "/api/sessions", "POST", {"name": "later"})
    assert code == 201 and created["session"]["degraded"] is False
    tmux = str(stack.home / ".local" / "bin" / "tmux")
    has = subprocess.run([tmux, "-S", str(stack.state_dir / "tmux.sock"), "has-session", "-t", "=later"])
    assert has.returncode == 0
    assert "TMUX=/" in asyncio.run(echo_in(app, "later", 50))
    # The degraded shell runs on; both kinds are listed, the banner's reason is gone.
    assert "TMUX=none" in asyncio.run(echo_in(app, "main", 60))
    listing = api(app, "/api/sessions")[1]
    assert [(s["name"], s["degraded"]) for s in listing["sessions"]] == [("main", True), ("later", False)]
    assert (listing["terminal"], listing["terminal_reason"]) == ("tmux", "")
    wait_until(lambda: "RUNNING" in app.ctl("status", "tmux"), timeout=20, what="tmux RUNNING")
