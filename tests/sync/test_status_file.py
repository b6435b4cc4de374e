"""The sync status file read back typed: what the watcher wrote comes back equal, a file from an older
watcher reads with defaults, and a value of the wrong type is an error that names its key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services import state
from services.sync.status import (
    Outcome,
    OverallState,
    RepoState,
    RepoStatus,
    RestoreItem,
    RestorePhase,
    RestoreStatus,
    SyncStatus,
    read_status,
    status_path,
    write_status,
)
from tests.conftest import Gateway

# What the first sync watcher wrote (before restores were reported): no `restore`, no `updated_at`.
OLDER_FILE = {
    "state": "syncing",
    "reason": "",
    "remote_root": "/Users/owner@example.com/projects",
    "pid": 1234,
    "repos": [{"name": "app", "state": "pending", "head": "b" * 40, "pending": 2}],
}


def test_what_is_written_reads_back_equal(tmp_path: Path) -> None:
    status = SyncStatus(
        state=OverallState.ERROR,
        reason="cannot reach the workspace",
        remote_root="/Users/owner@example.com/projects",
        repos=[
            RepoStatus(
                "app",
                RepoState.ERROR,
                "a" * 40,
                1.5,
                "b" * 40,
                pending=3,
                last_error="boom",
                attempts=2,
                next_retry_at=9.0,
                skipped_large=["big.bin"],
                skipped=[{"path": "bad:name", "reason": "refused"}],
                remote_path="/Users/owner@example.com/projects/app",
                note="hook not installed",
            )
        ],
        restore=RestoreStatus(
            RestorePhase.DONE,
            "/Users/owner@example.com/projects",
            1,
            1,
            10.0,
            12,
            items=[RestoreItem("web", Outcome.BESIDE, "projects/web.restored", "restored beside")],
        ),
        pid=42,
    )
    path = tmp_path / "status.json"
    write_status(path, status)
    assert read_status(path) == status


def test_an_older_file_reads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    state.atomic_write_json(path, OLDER_FILE)
    status = read_status(path)
    assert status.state is OverallState.SYNCING and status.restore is None and status.updated_at is None
    [repo] = status.repos
    assert (repo.name, repo.state, repo.pending, repo.head) == ("app", RepoState.PENDING, 2, "b" * 40)
    assert repo.last_synced_commit is None and repo.skipped == [] and repo.note == ""
    assert read_status(tmp_path / "absent.json") == SyncStatus()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"repos": {"app": {}}}, "repos is dict, not list"),
        ({"state": "busy"}, "state is 'busy', not one of"),
        ({"repos": [{"name": 5, "state": "synced"}]}, "repos[0].name is int, not str"),
        ({"repos": [{"state": "synced"}]}, "repos[0].name is missing"),
        ({"repos": [{"name": "app", "pending": True}]}, "repos[0].pending is bool, not int"),
        ({"restore": {"phase": "done", "items": [{"name": "x", "outcome": 1}]}}, "restore.items[0].outcome"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_key(
    tmp_path: Path, change: dict[str, object], named: str
) -> None:
    path = tmp_path / "status.json"
    state.atomic_write_json(path, {**OLDER_FILE, **change})
    with pytest.raises(ValueError, match="does not hold a sync status") as caught:
        read_status(path)
    assert named in str(caught.value)


async def test_the_api_serves_an_older_file_in_the_current_shape(gateway: Gateway) -> None:
    state.atomic_write_json(status_path(gateway.ctx.settings), OLDER_FILE)
    body = json.loads((await gateway.fetch("/api/sync")).body)
    assert body["state"] == "syncing" and body["restore"] is None and body["now"] > 0
    assert body["repos"][0]["pending"] == 2 and body["repos"][0]["skipped_large"] == []


async def test_the_api_names_the_bad_key(gateway: Gateway) -> None:
    state.atomic_write_json(status_path(gateway.ctx.settings), {**OLDER_FILE, "repos": [{"name": 5}]})
    response = await gateway.fetch("/api/sync")
    assert response.code == 500
    assert "repos[0].name is int" in json.loads(response.body)["error"]
