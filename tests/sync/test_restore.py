"""A fresh container (empty ~/projects and state dir) gets its projects back from the workspace."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.helpers import wait_until
from tests.sync.conftest import REMOTE_ROOT, Rig


def fresh_container(rig: Rig) -> None:
    """What an Apps restart leaves: no projects, no state (the workspace keeps everything)."""
    rig.stop()
    shutil.rmtree(rig.projects)
    shutil.rmtree(rig.stack.state_dir)


def wait_bundled(rig: Rig, name: str) -> None:
    head = rig.git(rig.projects / name, "rev-parse", "HEAD").strip()

    def manifest_names_head() -> bool:
        with rig.workspace.lock:
            raw = rig.workspace.files.get(f"{REMOTE_ROOT}/{name}.sync.json", b"")
        return f'"commit": "{head}"'.encode() in raw

    wait_until(manifest_names_head, timeout=15, what=f"{name}'s bundle and manifest")


def test_wiped_projects_come_back_with_history_branches_tags_and_remotes(rig: Rig) -> None:
    repo = rig.repo("app", {"a.txt": "one\n", ".gitignore": "*.log\n"})
    rig.git.commit(repo, "two", {"b/c.txt": "two\n"})
    rig.git(repo, "tag", "v1")
    rig.git(repo, "branch", "feature")
    rig.git(repo, "remote", "add", "origin", "https://someone:ghp_secret@github.com/acme/app.git")
    rig.git.commit(repo, "three", {"a.txt": "three\n"})
    (repo / "debug.log").write_text("ignored, never uploaded\n")
    head = rig.git(repo, "rev-parse", "HEAD").strip()
    rig.start()
    rig.wait_mirrored(repo)
    wait_bundled(rig, "app")
    fresh_container(rig)

    rig.projects.mkdir()
    imports = len(rig.workspace.calls("/workspace/import"))
    rig.start()
    restored = wait_until(lambda: rig.repo_status("app") or None, timeout=20, what="app restored")
    assert restored["state"] == "synced" and "bundle (3 commits)" in restored["note"]
    assert rig.git(repo, "rev-parse", "HEAD").strip() == head
    assert rig.git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert rig.git(repo, "log", "--format=%s").split() == ["three", "two", "first"]
    assert rig.git(repo, "tag").split() == ["v1"]
    assert "feature" in rig.git(repo, "branch")
    # The remote comes back without the credentials its URL had.
    assert rig.git(repo, "remote", "get-url", "origin").strip() == "https://github.com/acme/app.git"
    assert rig.git(repo, "status", "--porcelain").strip() == ""
    assert not (repo / "debug.log").exists()
    # The workspace already holds this tree: nothing is uploaded again, and the hook is back.
    rig.wait_idle("app")
    assert len(rig.workspace.calls("/workspace/import")) == imports
    assert (repo / ".git" / "hooks" / "post-commit").exists()
    rig.git.commit(repo, "four", {"d.txt": "after restore\n"})
    rig.wait_mirrored(repo)


@pytest.mark.parametrize("bundle", ["missing", "corrupt"])
def test_without_a_usable_bundle_the_files_come_back_as_one_commit(rig: Rig, bundle: str) -> None:
    repo = rig.repo("nobundle", {"x/y.txt": "y\n", "z.txt": "z\n"})
    rig.git.commit(repo, "second", {"z.txt": "zz\n"})
    rig.start()
    rig.wait_mirrored(repo)
    wait_bundled(rig, "nobundle")
    fresh_container(rig)
    with rig.workspace.lock:
        if bundle == "missing":  # as when it was over 10 MB
            del rig.workspace.files[f"{REMOTE_ROOT}/nobundle.bundle"]
        else:
            rig.workspace.files[f"{REMOTE_ROOT}/nobundle.bundle"] = b"# v2 git bundle\ngarbage"
        del rig.workspace.files[f"{REMOTE_ROOT}/nobundle.sync.json"]

    rig.start()
    status = wait_until(lambda: rig.repo_status("nobundle") or None, timeout=20, what="restored")
    assert "from its files" in status["note"]
    assert rig.git(repo, "log", "--format=%s").strip().splitlines() == [
        "Restored from the workspace mirror (no bundle: history not kept)"
    ]
    assert (repo / "z.txt").read_text() == "zz\n" and (repo / "x" / "y.txt").read_text() == "y\n"
    rig.wait_idle("nobundle")
    wait_bundled(rig, "nobundle")  # and now it has a bundle for next time


def test_files_newer_than_the_bundle_are_kept_not_rolled_back(rig: Rig) -> None:
    repo = rig.repo("stale", {"v.txt": "v1\n"})
    rig.start()
    wait_bundled(rig, "stale")
    rig.stop()
    # The container died after syncing v2's files but before refreshing the bundle.
    bundle = rig.workspace.files[f"{REMOTE_ROOT}/stale.bundle"]
    rig.start(bundle_idle=3600.0)
    rig.git.commit(repo, "v2", {"v.txt": "v2\n", "new.txt": "n\n"})
    rig.wait_mirrored(repo)
    rig.wait_idle("stale")
    assert rig.workspace.files[f"{REMOTE_ROOT}/stale.bundle"] == bundle
    assert f"{REMOTE_ROOT}/stale.sync.json" not in rig.workspace.files  # withdrawn before v2's files
    fresh_container(rig)

    rig.start()
    wait_until(lambda: rig.repo_status("stale") or None, timeout=20, what="restored")
    assert (repo / "v.txt").read_text() == "v2\n" and (repo / "new.txt").read_text() == "n\n"
    assert rig.git(repo, "log", "--format=%s").strip().splitlines() == [
        "Restored workspace files newer than the last bundle",
        "first",
    ]
    rig.wait_idle("stale")
    assert rig.remote("stale") == {"v.txt": b"v2\n", "new.txt": b"n\n"}


def test_never_overwrites_a_local_folder(rig: Rig) -> None:
    mine = rig.repo("mine", {"a.txt": "workspace version\n"})
    rig.start()
    wait_bundled(rig, "mine")
    fresh_container(rig)
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("not a repo, but mine\n")

    rig.start()
    # The status file appears once start-up (restore included) is over: the state dir was wiped.
    wait_until((rig.state / "status.json").exists, what="start-up done")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert rig.remote("mine") == {"a.txt": b"workspace version\n"}


def test_a_repo_deleted_during_this_containers_life_stays_deleted(rig: Rig) -> None:
    rig.repo("dropped", {"d.txt": "d\n"})
    rig.start()
    wait_bundled(rig, "dropped")
    rig.stop()
    shutil.rmtree(rig.projects / "dropped")  # the user's choice; the journal remembers the repo

    rig.start()
    wait_until(lambda: rig.repo_status("dropped").get("state") == "removed", what="dropped stays removed")
    assert not (rig.projects / "dropped").exists()
    assert rig.remote("dropped") == {"d.txt": b"d\n"}


def test_a_bundle_over_the_limit_is_not_uploaded_and_the_status_says_so(rig: Rig) -> None:
    rig.repo("heavy", {"small.txt": "s\n", "noise.bin": os.urandom(6000)})
    rig.start(max_file_bytes=4000)  # stands in for 10 MB
    status = wait_until(
        lambda: (
            rig.repo_status("heavy")
            if "bundle: over 10 MB" in rig.repo_status("heavy").get("note", "")
            else None
        ),
        timeout=15,
        what="the bundle note",
    )
    assert status["skipped_large"] == ["noise.bin"] and status["state"] == "synced"
    assert f"{REMOTE_ROOT}/heavy.bundle" not in rig.workspace.files
    assert b'"bundle": false' in rig.workspace.files[f"{REMOTE_ROOT}/heavy.sync.json"]
