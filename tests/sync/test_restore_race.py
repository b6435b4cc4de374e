"""A folder made in ~/projects while the restore runs (by the user, or an agent) never blocks it, and
what became of each project is said: in the status file, the sync log and the shells' notice."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from services.sync.notice import notice_path
from tests.fake_workspace import wait_for_requests
from tests.helpers import wait_until
from tests.sync.conftest import REMOTE_ROOT, Rig
from tests.sync.test_restore import fresh_container, wait_bundled

SLOW_DOWNLOADS = r"^/api/2\.0/workspace/export"


def seed(rig: Rig, name: str = "app") -> tuple[Path, str, Path]:
    """A project in the workspace (files, bundle, manifest), a clone of it kept outside ~/projects,
    then a fresh container. Returns (its path in ~/projects, its HEAD, the clone)."""
    repo = rig.repo(name, {"a.txt": "one\n"})
    rig.git.commit(repo, "two", {"b.txt": "two\n"})
    clone = rig.stack.root / f"clone-{name}"
    rig.git(rig.stack.root, "clone", "-q", str(repo), str(clone))
    rig.git.commit(repo, "three", {"a.txt": "three\n"})
    head = rig.git(repo, "rev-parse", "HEAD").strip()
    rig.start()
    wait_bundled(rig, name)
    fresh_container(rig)
    rig.projects.mkdir()
    return repo, head, clone


def restore_items(rig: Rig) -> dict[str, dict[str, Any]]:
    restore = rig.status().get("restore") or {}
    return {item["name"]: item for item in restore.get("items", [])}


def start_slow_restore(rig: Rig) -> None:
    """Start with downloads slowed down, and return once the restore is under way: whatever the test
    makes in ~/projects now appears while the repository is being built."""
    rig.workspace.fault_paths, rig.workspace.latency = SLOW_DOWNLOADS, 0.4
    rig.start()
    wait_for_requests(rig.workspace, "/workspace/export", timeout=20)


def wait_outcome(rig: Rig, name: str) -> dict[str, Any]:
    def outcome() -> dict[str, Any] | None:
        restore = rig.status().get("restore") or {}
        item = restore_items(rig).get(name, {})
        return item if restore.get("phase") == "done" and item.get("outcome") != "waiting" else None

    return wait_until(outcome, timeout=30, what=f"{name}'s restore outcome")


def test_an_empty_folder_made_meanwhile_is_restored_into(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sync")
    repo, head, _ = seed(rig)
    start_slow_restore(rig)
    repo.mkdir()  # `mkdir app && cd app` while the restore runs

    item = wait_outcome(rig, "app")
    assert item["outcome"] == "into empty folder" and item["path"] == "projects/app", item
    assert rig.git(repo, "rev-parse", "HEAD").strip() == head
    assert rig.git(repo, "status", "--porcelain").strip() == ""
    assert "~/projects/app was an empty folder: restored into it" in caplog.text
    rig.workspace.latency = 0.0
    assert "restored from its bundle" in rig.wait_idle("app")["note"]


def test_a_folder_with_files_made_meanwhile_gets_the_restore_beside_it(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sync")
    repo, head, _ = seed(rig)
    start_slow_restore(rig)
    repo.mkdir()
    (repo / "notes.txt").write_text("mine, not a repo\n")

    item = wait_outcome(rig, "app")
    assert item["outcome"] == "beside" and item["path"] == "projects/app.restored", item
    message = "~/projects/app is in use: left as it is, restored beside it as ~/projects/app.restored"
    assert item["message"] == message
    assert message in caplog.text
    assert sorted(p.name for p in repo.iterdir()) == ["notes.txt"]
    beside = rig.projects / "app.restored"
    assert rig.git(beside, "rev-parse", "HEAD").strip() == head
    # The copy beside is a repository like any other: mirrored under its own name.
    rig.workspace.latency = 0.0
    rig.wait_mirrored(beside, timeout=20)
    assert rig.remote("app") == {"a.txt": b"three\n", "b.txt": b"two\n"}


@pytest.mark.parametrize("kind", ["behind", "diverged", "other project"])
def test_a_repository_made_meanwhile_keeps_its_work(rig: Rig, kind: str) -> None:
    repo, head, clone = seed(rig)
    if kind == "diverged":
        rig.git.commit(clone, "mine", {"mine.txt": "local work\n"})
    elif kind == "other project":
        shutil.rmtree(clone)
        rig.git.init(clone)
        rig.git.commit(clone, "unrelated", {"z.txt": "z\n"})
    theirs = rig.git(clone, "rev-parse", "HEAD").strip()
    start_slow_restore(rig)
    clone.rename(repo)  # as a `git clone` into ~/projects/app would leave it

    item = wait_outcome(rig, "app")
    if kind == "behind":
        assert item["outcome"] == "fast-forwarded", item
        assert "fast-forwarded main" in item["message"]
        assert rig.git(repo, "rev-parse", "HEAD").strip() == head
        assert (repo / "a.txt").read_text() == "three\n"
    elif kind == "diverged":
        assert item["outcome"] == "as a branch", item
        assert item["message"].endswith("the restored history is on branch main-restored")
        assert rig.git(repo, "rev-parse", "HEAD").strip() == theirs  # their work, untouched
        assert rig.git(repo, "rev-parse", "main-restored").strip() == head
    else:
        assert item["outcome"] == "beside", item
        assert "a git repository of another project" in item["message"]
        assert rig.git(repo, "rev-parse", "HEAD").strip() == theirs
        assert rig.git(rig.projects / "app.restored", "rev-parse", "HEAD").strip() == head
    assert not list(rig.projects.glob(".restoring-*"))
    assert "coding-agents-restore" not in rig.git(repo, "for-each-ref")
    # Their HEAD is what gets mirrored from now on; the bundle keeps the restored branch as well.
    rig.workspace.latency = 0.0
    rig.wait_mirrored(repo, timeout=20)


def test_restore_progress_and_the_shell_notice(rig: Rig) -> None:
    seed(rig, "one")
    rig.stop()
    rig.repo("two", {"t.txt": "t\n"})
    rig.start()
    wait_bundled(rig, "two")
    fresh_container(rig)
    rig.projects.mkdir()
    notice = notice_path(rig.settings)

    start_slow_restore(rig)
    restore = wait_until(
        lambda: (r := rig.status().get("restore")) and r["phase"] == "restoring" and r, what="restoring"
    )
    assert restore["total"] == 2 and restore["remote_root"] == REMOTE_ROOT
    assert sorted(restore_items(rig)) == ["one", "two"]
    text = notice.read_text()
    assert f"restoring 2 projects from /Workspace{REMOTE_ROOT}… ~/projects fills in a moment" in text
    wait_outcome(rig, "one")
    wait_outcome(rig, "two")
    restore = rig.status()["restore"]
    assert restore["done"] == 2 and restore["finished_at"] >= restore["started_at"]
    assert [i["outcome"] for i in restore["items"]] == ["restored", "restored"]
    assert not notice.exists()
    assert (rig.projects / "one" / "a.txt").read_text() == "three\n"
