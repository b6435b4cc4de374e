"""`GET /api/setup-status` serves the runner's status file; /health tells only the overall state."""

from __future__ import annotations

import json

from services.setup.status import SetupState, SetupStatus, StepState, StepStatus, status_path, write_status
from tests.conftest import Gateway


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
    assert health == {"status": "ok", "setup": "running"}
    assert (await gateway.fetch("/api/setup-status", auth=False)).code == 401


async def test_a_corrupt_status_file_is_a_clear_500(gateway: Gateway) -> None:
    path = status_path(gateway.ctx.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[1, 2")
    response = await gateway.fetch("/api/setup-status")
    assert response.code == 500 and "setup status unreadable" in json.loads(response.body)["error"]
