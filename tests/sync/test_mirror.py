"""Commits mirrored to the (fake) workspace: exactly HEAD's tracked files, under the right path."""

from __future__ import annotations

from tests.helpers import wait_until
from tests.sync.conftest import REMOTE_ROOT, Rig


def test_commit_mirrors_tracked_files_only(rig: Rig) -> None:
    repo = rig.repo(
        "demo",
        {
            ".gitignore": "secret.env\nbuild/\n",
            "README.md": "# demo\n",
            "src/app.py": "print('hi')\n",
            "src/pkg/deep/mod.py": "X = 1\n",
            "dist/app.zip": b"PK\x05\x06" + b"\0" * 18,
        },
    )
    (repo / "secret.env").write_text("TOKEN=do-not-upload\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_bytes(b"\0" * 10)
    rig.start()
    rig.wait_mirrored(repo)
    remote = rig.remote("demo")
    assert set(remote) == {".gitignore", "README.md", "src/app.py", "src/pkg/deep/mod.py", "dist/app.zip"}
    assert remote["src/app.py"] == b"print('hi')\n"
    # AUTO keeps .py a plain file (the SDK's default, SOURCE, would make it a notebook); RAW keeps a
    # .zip a file (AUTO would unpack it into a folder).
    assert rig.workspace.formats[f"{REMOTE_ROOT}/demo/src/app.py"] == "AUTO"
    assert rig.workspace.formats[f"{REMOTE_ROOT}/demo/dist/app.zip"] == "RAW"

    # A delete, a rename (into a new folder) and an edit, in one commit.
    (repo / "lib").mkdir()
    rig.git(repo, "mv", "src/app.py", "lib/main.py")
    rig.git.commit(repo, "move", {"README.md": "# demo v2\n"}, delete=("src/pkg/deep/mod.py",))
    rig.wait_mirrored(repo)
    assert set(rig.remote("demo")) == {".gitignore", "README.md", "lib/main.py", "dist/app.zip"}
    status = rig.wait_idle("demo")
    assert status["pending"] == 0 and status["last_error"] is None
    assert status["remote_path"] == f"{REMOTE_ROOT}/demo"
    # Folders left empty go too.
    assert "src/pkg/deep" not in rig.remote_dirs("demo")


def test_quick_commits_coalesce_into_fewer_syncs(rig: Rig) -> None:
    repo = rig.repo("busy", {f"f{i:02}.txt": "0\n" for i in range(20)})
    watcher = rig.start()
    rig.wait_idle("busy")
    before = watcher.syncs
    for i in range(200):
        files: dict[str, bytes | str] = {f"f{i % 20:02}.txt": f"{i}\n", f"new/{i % 7}.txt": f"n{i}\n"}
        delete = (
            (f"new/{(i + 3) % 7}.txt",) if i % 5 == 4 and (repo / f"new/{(i + 3) % 7}.txt").exists() else ()
        )
        rig.git.commit(repo, f"commit {i}", files, delete=delete)
    rig.wait_mirrored(repo, timeout=30)
    rig.wait_idle("busy")
    syncs = watcher.syncs - before
    print(f"200 commits -> {syncs} syncs")
    assert 1 <= syncs < 200, f"{syncs} syncs for 200 commits"


def test_odd_names_empty_repo_and_detached_head(rig: Rig) -> None:
    odd = rig.repo(
        "my repo ü",
        {"dir with space/naïve file.txt": "bonjour\n", "日本語.md": "こんにちは\n", "a'b\"c.txt": "q\n"},
    )
    rig.repo("empty")  # `git init` and nothing else
    detached = rig.repo("detached", {"v.txt": "one\n"})
    first = rig.git(detached, "rev-parse", "HEAD").strip()
    rig.git.commit(detached, "two", {"v.txt": "two\n", "extra.txt": "x\n"})
    rig.git(detached, "checkout", "-q", "--detach", first)
    rig.start()
    rig.wait_mirrored(odd)
    rig.wait_mirrored(detached)
    assert rig.remote("detached") == {"v.txt": b"one\n"}
    assert rig.wait_idle("detached")["head"] == first
    rig.wait_idle("my repo ü")
    empty = rig.repo_status("empty")
    assert empty["state"] == "empty" and empty["last_synced_commit"] is None
    assert rig.remote("empty") == {}

    # A commit on the detached HEAD is mirrored like any other; so is the empty repo's first one.
    rig.git.commit(detached, "three", {"v.txt": "three\n"})
    rig.git.commit(rig.projects / "empty", "hello", {"hello.txt": "hi\n"})
    rig.wait_mirrored(detached)
    rig.wait_mirrored(rig.projects / "empty")


def test_removed_repo_keeps_its_workspace_copy(rig: Rig) -> None:
    repo = rig.repo("gone", {"keep.txt": "precious\n"})
    rig.start()
    rig.wait_idle("gone")
    for path in sorted(repo.rglob("*"), reverse=True):
        path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
    repo.rmdir()
    status = wait_until(
        lambda: rig.repo_status("gone") if rig.repo_status("gone").get("state") == "removed" else None,
        what="removed",
    )
    assert "workspace copy is kept" in status["note"]
    assert rig.remote("gone") == {"keep.txt": b"precious\n"}


def test_large_files_are_skipped_and_shown(rig: Rig) -> None:
    big = b"x" * (10 * 1024 * 1024 + 1)
    repo = rig.repo("media", {"small.txt": "s\n", "big.bin": big})
    rig.start()
    rig.wait_mirrored(repo)
    status = rig.wait_idle("media")
    assert status["skipped_large"] == ["big.bin"] and "big.bin" not in rig.remote("media")
    rig.git.commit(repo, "shrink", {"big.bin": b"now small\n"})
    rig.wait_mirrored(repo)
    assert rig.wait_idle("media")["skipped_large"] == []


def test_type_changes_and_folder_file_swaps(rig: Rig) -> None:
    repo = rig.repo("swap", {"thing": "a file\n", "dir/inner.txt": "i\n", "link-target.txt": "t\n"})
    rig.start()
    rig.wait_mirrored(repo)
    (repo / "thing").unlink()
    (repo / "dir" / "inner.txt").unlink()
    (repo / "dir").rmdir()
    rig.git.commit(repo, "swap", {"thing/now-a-folder.txt": "f\n", "dir": "now a file\n"})
    (repo / "link-target.txt").unlink()
    (repo / "link-target.txt").symlink_to("dir")  # a file becomes a symlink: no content to mirror
    rig.git.commit(repo, "symlink")
    rig.wait_mirrored(repo)
    assert rig.remote("swap") == {"thing/now-a-folder.txt": b"f\n", "dir": b"now a file\n"}


def test_refused_file_is_skipped_and_the_rest_synced(rig: Rig) -> None:
    rig.workspace.reject_paths = r"/refused\.txt$"
    repo = rig.repo("picky", {"ok.txt": "fine\n", "refused.txt": "no\n"})
    rig.start()
    status = rig.wait_idle("picky")
    assert rig.remote("picky") == {"ok.txt": b"fine\n"}
    assert [s["path"] for s in status["skipped"]] == ["refused.txt"]
    # Unchanged, it is not tried again; changed, it is.
    calls = len(rig.workspace.calls("/workspace/import"))
    rig.git.commit(repo, "more", {"ok.txt": "finer\n"})
    rig.wait_idle("picky")
    assert rig.remote("picky") == {"ok.txt": b"finer\n"}
    assert [s["path"] for s in rig.repo_status("picky")["skipped"]] == ["refused.txt"]
    assert len(rig.workspace.calls("/workspace/import")) - calls <= 3  # ok.txt (+ bundle, manifest)


def test_lost_journal_means_a_full_sync_that_removes_strays(rig: Rig) -> None:
    repo = rig.repo("again", {"a.txt": "a\n", "sub/b.txt": "b\n"})
    # What an earlier life left in the workspace: a file and a folder HEAD no longer has.
    with rig.workspace.lock:
        rig.workspace.dirs.update({f"{REMOTE_ROOT}/again/old", f"{REMOTE_ROOT}/again/sub"})
        rig.workspace.dirs.update(
            {"/Users", REMOTE_ROOT.rsplit("/", 1)[0], REMOTE_ROOT, f"{REMOTE_ROOT}/again"}
        )
        rig.workspace.files[f"{REMOTE_ROOT}/again/old/stale.txt"] = b"stale"
        rig.workspace.files[f"{REMOTE_ROOT}/again/sub/stray.txt"] = b"stray"
        rig.workspace.files[f"{REMOTE_ROOT}/again/a.txt"] = b"outdated"
    rig.start()
    rig.wait_mirrored(repo)
    assert "old" not in rig.remote_dirs("again")


def test_no_workspace_idles_and_says_why(rig: Rig) -> None:
    settings = rig.stack.settings  # no DATABRICKS_HOST / DATABRICKS_TOKEN
    rig.repo("local-only", {"a.txt": "a\n"})
    watcher = rig.start(settings)
    status = wait_until(
        lambda: rig.status() if rig.status()["state"] == "no workspace" else None, what="status"
    )
    assert "DATABRICKS_HOST" in status["reason"] and status["repos"] == []
    assert rig.thread is not None and rig.thread.is_alive() and not watcher.connected.is_set()
    assert not (rig.projects / "local-only" / ".git" / "hooks" / "post-commit").exists()
    assert rig.workspace.requests == []
