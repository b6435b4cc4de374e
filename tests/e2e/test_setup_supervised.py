"""The setup runner as supervisord's one-shot: runs at start, the terminal never waits for it, the
page's Retry reruns what failed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from services.version import app_version
from tests.conftest import Stack
from tests.e2e.conftest import RunningApp, start_app, stop_app
from tests.helpers import TermClient, wait_until
from tests.setup.conftest import command_step, tools

pytestmark = pytest.mark.slow


def api(app: RunningApp, path: str, method: str = "GET", body: object = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        app.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {app.stack.token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def states(app: RunningApp) -> dict[str, str]:
    return {s["id"]: s["state"] for s in api(app, "/api/setup-status")[1]["steps"]}


@pytest.fixture
def setup_app(stack: Stack) -> Iterator[RunningApp]:
    flag, runs, release = stack.root / "flag", stack.root / "runs", stack.root / "release"
    registry = stack.root / "agents.yaml"
    registry.write_text(
        tools(
            command_step("steady", f"echo run >> {runs}"),
            command_step("flaky", f"sleep 1; test -f {flag} || {{ echo 'mirror is down'; exit 7; }}"),
            command_step("slow", f"while [ ! -f {release} ]; do sleep 0.05; done", after=("steady",)),
        )
    )
    stack.env.update(CODING_AGENTS_SETUP="on", CODING_AGENTS_REGISTRY=str(registry))
    app = start_app(stack)
    yield app
    stop_app(app)


async def answer_in_terminal(app: RunningApp) -> None:
    client = await TermClient.connect(app.url, "main", app.stack.token)
    await client.wait_ready()
    await client.type("echo $((7*6))ready\r")
    await client.wait_text("42ready")
    client.close()


def test_setup_runs_beside_a_usable_terminal_and_retries_from_the_page(
    setup_app: RunningApp, stack: Stack
) -> None:
    app = setup_app
    wait_until(lambda: states(app).get("slow") == "running", timeout=20, what="setup running")
    asyncio.run(answer_in_terminal(app))  # the first prompt does not wait for setup
    health = json.loads(urllib.request.urlopen(app.url + "/health", timeout=5).read())
    assert health == {
        "status": "ok",
        "version": app_version(),
        "setup": "running",
        "terminal": "tmux",
        "terminal_reason": "",
    }

    (stack.root / "release").touch()
    wait_until(
        lambda: api(app, "/api/setup-status")[1]["state"] == "failed", timeout=20, what="setup finished"
    )
    flaky = next(s for s in api(app, "/api/setup-status")[1]["steps"] if s["id"] == "flaky")
    assert flaky["exit_code"] == 7 and flaky["reason"] == "exited with status 7: mirror is down"
    # The run writes its final status, then exits; supervisord sees the exit when its loop next wakes
    # (up to a second; CI once asked in between and read RUNNING).
    wait_until(lambda: "EXITED" in app.ctl("status", "setup"), timeout=10, what="setup EXITED")
    log = (stack.state_dir / "logs" / "setup.log").read_text()
    assert "[flaky] FAILED" in log and "[steady] OK" in log
    # The platform log (scripts/run's stdout, all Databricks Apps shows) names the step and the reason.
    wait_until(
        lambda: (
            "[coding-agents] setup step flaky failed: exited with status 7: mirror is down; details in "
            in (stack.root / "run.out").read_text()
        ),
        timeout=5,
        what="the failure on the platform log",
    )

    (stack.root / "flag").touch()
    assert api(app, "/api/setup/retry", "POST", {}) == (202, {"started": True})
    wait_until(lambda: states(app).get("flaky") == "running", timeout=10, what="retry started")
    code, body = api(app, "/api/setup/retry", "POST", {})
    assert code == 409 and "already running" in body["error"]
    wait_until(lambda: api(app, "/api/setup-status")[1]["state"] == "done", timeout=20, what="retry done")
    assert states(app) == {"steady": "ok", "flaky": "ok", "slow": "ok"}
    assert (stack.root / "runs").read_text() == "run\n"  # only the failed step ran again

    # New panes find what setup installed: ~/.local/bin leads the tmux global PATH.
    settings = stack.settings
    path = subprocess.run(
        [settings.tmux_bin, "-S", str(settings.tmux_socket), "show-environment", "-g", "PATH"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(settings.local_bin) in path
