"""`GET /api/sync` serves the watcher's status file, to the owner only."""

from __future__ import annotations

import json

from services.sync.status import OverallState, RepoState, RepoStatus, SyncStatus, status_path, write_status
from tests.conftest import Gateway


async def test_idle_and_empty_before_the_watcher_writes(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/sync")
    assert response.code == 200
    body = json.loads(response.body)
    assert body["state"] == "idle" and body["repos"] == [] and body["now"] > 0
    assert (await gateway.fetch("/api/sync", auth=False)).code == 401


async def test_serves_the_status_file(gateway: Gateway) -> None:
    status = SyncStatus(
        state=OverallState.ERROR,
        repos=[
            RepoStatus("app", RepoState.SYNCED, "a" * 40, 1.0, skipped_large=["big.bin"]),
            RepoStatus("web", RepoState.ERROR, pending=3, last_error="injected failure (INTERNAL_ERROR)"),
        ],
    )
    write_status(status_path(gateway.ctx.settings), status)
    body = json.loads((await gateway.fetch("/api/sync")).body)
    assert body["state"] == "error"
    assert [(r["name"], r["state"], r["pending"]) for r in body["repos"]] == [
        ("app", "synced", 0),
        ("web", "error", 3),
    ]
    assert (
        body["repos"][0]["skipped_large"] == ["big.bin"]
        and body["repos"][0]["last_synced_commit"] == "a" * 40
    )


async def test_a_corrupt_status_file_is_a_clear_500(gateway: Gateway) -> None:
    path = status_path(gateway.ctx.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    response = await gateway.fetch("/api/sync")
    assert response.code == 500 and "sync status unreadable" in json.loads(response.body)["error"]
