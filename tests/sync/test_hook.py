"""The post-commit hook: drops one event, chains to the repo's own hook, never fails a commit, and
respects core.hooksPath without taking over anything global."""

from __future__ import annotations

import stat
from pathlib import Path

from services.sync import hook
from services.sync.gitrepo import Git, git_env
from tests.sync.conftest import Rig

USER_HOOK = '#!/bin/sh\necho "user hook ran in $(pwd)" >> "{marker}"\n'


def events(spool: Path) -> list[str]:
    return sorted(p.read_text().strip() for p in spool.glob("*.event")) if spool.exists() else []


def install(rig: Rig, repo: Path, spool: Path) -> hook.HookResult:
    return hook.install(Git(repo, git_env(rig.stack.home)), spool)


def test_chains_to_the_repos_own_hook_and_reinstalls_idempotently(rig: Rig) -> None:
    repo = rig.repo("chained", {"a.txt": "a\n"})
    hooks = repo / ".git" / "hooks"
    marker = rig.stack.root / "marker"
    (hooks / "post-commit").write_text(USER_HOOK.format(marker=marker))
    (hooks / "post-commit").chmod(0o755)
    spool = rig.stack.root / "spool"

    result = install(rig, repo, spool)
    assert result.installed and "kept the existing hook" in result.note
    assert (hooks / "post-commit.user").read_text() == USER_HOOK.format(marker=marker)
    ours = (hooks / "post-commit").read_text()
    assert hook.MARKER in ours and (hooks / "post-commit").stat().st_mode & stat.S_IXUSR
    assert install(rig, repo, spool) == hook.HookResult(True, hooks / "post-commit")  # nothing to do

    rig.git.commit(repo, "second", {"b.txt": "b\n"})
    assert events(spool) == [str(repo)]
    assert marker.read_text() == f"user hook ran in {repo}\n"

    # A tool (husky, pre-commit) later replaces our hook with its own: theirs is kept and chained too.
    (hooks / "post-commit").write_text("#!/bin/sh\necho tool >> " + str(marker) + "\n")
    assert "kept the existing hook" in install(rig, repo, spool).note
    assert (hooks / "post-commit.user.old").read_text() == USER_HOOK.format(marker=marker)
    rig.git.commit(repo, "third")
    assert marker.read_text().endswith("tool\n") and len(events(spool)) == 2


def test_a_broken_spool_never_fails_or_slows_the_commit(rig: Rig) -> None:
    repo = rig.repo("robust", {"a.txt": "a\n"})
    blocker = rig.stack.root / "not-a-folder"
    blocker.write_text("a file where the spool folder should be")
    install(rig, repo, blocker / "spool")
    result = rig.git(repo, "commit", "-q", "--allow-empty", "-m", "still fine")
    assert result == ""
    assert rig.git(repo, "log", "-1", "--format=%s").strip() == "still fine"


def test_local_hooks_path_is_respected_when_git_ignores_it(rig: Rig) -> None:
    repo = rig.repo("husky", {"a.txt": "a\n"})
    rig.git(repo, "config", "core.hooksPath", ".hooks/_")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text(".hooks/_/\n")
    spool = rig.stack.root / "spool"
    result = install(rig, repo, spool)
    assert result.installed and result.path == repo / ".hooks" / "_" / "post-commit"
    rig.git.commit(repo, "via hooksPath")
    assert events(spool) == [str(repo)]
    assert rig.git(repo, "status", "--porcelain") == ""  # nothing shows up in the user's worktree


def test_tracked_or_global_hooks_paths_are_left_alone(rig: Rig) -> None:
    tracked = rig.repo("tracked", {".githooks/post-commit": "#!/bin/sh\nexit 0\n"})
    rig.git(tracked, "config", "core.hooksPath", ".githooks")
    spool = rig.stack.root / "spool"
    result = install(rig, tracked, spool)
    assert not result.installed and "part of the repository" in result.note
    assert rig.git(tracked, "status", "--porcelain") == ""

    shared = rig.stack.root / "global-hooks"
    (rig.stack.home / ".gitconfig").write_text(f"[core]\n\thooksPath = {shared}\n")
    other = rig.repo("other", {"a.txt": "a\n"})
    result = install(rig, other, spool)
    assert not result.installed and "globally" in result.note
    assert not shared.exists() and not (other / ".git" / "hooks" / "post-commit").exists()


def test_commits_without_a_hook_are_found_by_the_periodic_scan(rig: Rig) -> None:
    repo = rig.repo("scanned", {".githooks/post-commit": "#!/bin/sh\nexit 0\n", "a.txt": "a\n"})
    rig.git(repo, "config", "core.hooksPath", ".githooks")
    rig.start(scan_interval=0.3)
    rig.wait_mirrored(repo)
    status = rig.wait_idle("scanned")
    assert "periodic scan" in status["note"]
    rig.git.commit(repo, "no hook ran", {"a.txt": "b\n"})
    rig.wait_mirrored(repo)
    assert not list((rig.state / "spool").iterdir())


def test_the_watcher_installs_the_hook_and_the_users_hook_still_runs(rig: Rig) -> None:
    repo = rig.repo("both", {"a.txt": "a\n"})
    marker = rig.stack.root / "marker"
    user_hook = repo / ".git" / "hooks" / "post-commit"
    user_hook.write_text(USER_HOOK.format(marker=marker))
    user_hook.chmod(0o755)
    rig.start()
    rig.wait_idle("both")
    rig.git.commit(repo, "with both hooks", {"a.txt": "b\n"})
    rig.wait_mirrored(repo)
    assert marker.read_text() == f"user hook ran in {repo}\n"
