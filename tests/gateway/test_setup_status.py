"""`GET /api/setup-status` serves the runner's status file; /health tells only the overall state."""

from __future__ import annotations

import json

from services.setup.status import SetupState, SetupStatus, StepState, StepStatus, status_path, write_status
from services.version import app_version
from tests.conftest import Gateway
from tests.helpers import async_wait_until


async def test_pending_until_the_runner_writes(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/setup-status")
    assert response.code == 200
    body = json.loads(response.body)
    assert body["state"] == "pending" and body["steps"] == [] and body["now"] > 0


async def test_serves_the_status_file_and_health_only_the_state(gateway: Gateway) -> None:
    status = SetupStatus(
        state=SetupState.RUNNING,
        started=1.0,
        steps=[
            StepStatus("claude", "Claude Code", "npm", StepState.RUNNING, version="2.1.197", agent=True),
            StepStatus("micro", "micro", "download", StepState.FAILED, reason="checksum mismatch"),
        ],
    )
    write_status(status_path(gateway.ctx.settings), status)
    body = json.loads((await gateway.fetch("/api/setup-status")).body)
    assert body["state"] == "running"
    assert [(s["id"], s["state"], s["reason"]) for s in body["steps"]] == [
        ("claude", "running", ""),
        ("micro", "failed", "checksum mismatch"),
    ]
    health = json.loads((await gateway.fetch("/health", auth=False)).body)
    assert health == {
        "status": "ok",
        "version": app_version(),
        "setup": "running",
        "terminal": "tmux",
        "terminal_reason": "",
    }
    assert (await gateway.fetch("/api/setup-status", auth=False)).code == 401


async def test_a_corrupt_status_file_is_a_clear_500(gateway: Gateway) -> None:
    path = status_path(gateway.ctx.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[1, 2")
    response = await gateway.fetch("/api/setup-status")
    assert response.code == 500 and "setup status unreadable" in json.loads(response.body)["error"]


async def test_a_launcher_opens_a_window_running_the_agent(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/sessions/main/windows", "POST", body=json.dumps({"agent": "gemini"}))
    assert response.code == 201, response.body
    window = json.loads(response.body)["window"]
    assert window["name"] == "gemini"
    sessions = gateway.ctx.sessions
    names = sessions._run("list-windows", "-t", "=main:", "-F", "#{window_index}:#{window_name}")
    assert f"{window['index']}:gemini" in names
    # The agent's launch command was typed into the window's shell.
    await async_wait_until(
        lambda: "gemini" in "\n".join(sessions._run("capture-pane", "-p", "-t", f"=main:{window['index']}")),
        what="launch command in the new window",
    )


async def test_launcher_errors(gateway: Gateway) -> None:
    unknown = await gateway.fetch("/api/sessions/main/windows", "POST", body=json.dumps({"agent": "rm -rf"}))
    assert (
        unknown.code == 400 and "'agent' must be one of: claude, gemini" in json.loads(unknown.body)["error"]
    )
    missing = await gateway.fetch("/api/sessions/nope/windows", "POST", body=json.dumps({"agent": "claude"}))
    assert missing.code == 404
    bad = await gateway.fetch("/api/sessions/a%20b/windows", "POST", body=json.dumps({"agent": "claude"}))
    assert bad.code == 400


async def test_retry_without_supervisord_is_a_clear_503(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/setup/retry", "POST", body=b"{}")
    assert response.code == 503 and "supervisord is not running" in json.loads(response.body)["error"]
    unknown = await gateway.fetch("/api/setup/retry", "POST", body=json.dumps({"step": "ghost"}))
    assert unknown.code == 400 and "no setup step 'ghost'" in json.loads(unknown.body)["error"]
