"""The status the watcher writes is a pure function of its state: each repo's state and note follow
from the journal, ~/projects and the restore, in the order the page relies on."""

from __future__ import annotations

from dataclasses import replace

from services.sync.hook import HookResult
from services.sync.journal import RepoRecord
from services.sync.report import Snapshot, build_status
from services.sync.status import OverallState, RepoState

ROOT = "/Users/owner@example.com/projects"
IDLE = Snapshot(
    has_workspace=True,
    overall_error="",
    remote_root=ROOT,
    restore=None,
    restore_errors={},
    records=[],
    local=set(),
    heads={},
    git_errors={},
    hooks={},
    syncing=None,
    pending={},
    pid=7,
)


def test_each_repo_state_follows_from_the_state() -> None:
    snap = replace(
        IDLE,
        records=[
            RepoRecord("done", synced="a" * 40),
            RepoRecord("behind", synced="a" * 40),
            RepoRecord("failing", synced="a" * 40, attempts=2, next_try=50.0, last_error="boom"),
            RepoRecord("gone", synced="a" * 40),
            RepoRecord("lost", bundle_error="over 10 MB"),
        ],
        local={"done", "behind", "failing", "busy", "fresh", "broken", "lost"},
        heads={"done": "a" * 40, "behind": "b" * 40, "failing": "b" * 40, "busy": "c" * 40, "fresh": None},
        git_errors={"broken": "not a git repository"},
        hooks={"done": HookResult(False, None, "core.hooksPath is elsewhere")},
        restore_errors={"lost": "bundle unreadable"},
        syncing="busy",
        pending={"behind": 2, "failing": 1, "busy": 1},
    )
    status = build_status(snap)
    states = {r.name: r.state for r in status.repos}
    assert [r.name for r in status.repos] == sorted(states)
    assert states == {
        "behind": RepoState.PENDING,
        "broken": RepoState.ERROR,
        "busy": RepoState.SYNCING,
        "done": RepoState.SYNCED,
        "failing": RepoState.ERROR,
        "fresh": RepoState.EMPTY,
        "gone": RepoState.REMOVED,
        "lost": RepoState.ERROR,
    }
    repos = {r.name: r for r in status.repos}
    assert repos["done"].note == "core.hooksPath is elsewhere" and repos["done"].remote_path == f"{ROOT}/done"
    assert repos["failing"].next_retry_at == 50.0 and repos["behind"].pending == 2
    assert repos["lost"].last_error == "bundle unreadable" and repos["lost"].note == "bundle: over 10 MB"
    assert "workspace copy is kept" in repos["gone"].note
    assert status.state is OverallState.ERROR and status.pid == 7 and status.remote_root == ROOT


def test_the_overall_state() -> None:
    assert build_status(IDLE).state is OverallState.IDLE
    pending = replace(IDLE, records=[RepoRecord("a")], local={"a"}, heads={"a": "b" * 40}, pending={"a": 1})
    assert build_status(pending).state is OverallState.SYNCING
    stuck = build_status(replace(pending, overall_error="cannot reach the workspace"))
    assert stuck.state is OverallState.ERROR and stuck.reason == "cannot reach the workspace"
    unconnected = build_status(replace(pending, remote_root=""))
    assert unconnected.remote_root == "" and unconnected.repos[0].remote_path == ""
    off = build_status(replace(pending, has_workspace=False, overall_error="no workspace configured"))
    assert (
        off.state is OverallState.NO_WORKSPACE and off.repos == [] and off.reason == "no workspace configured"
    )
