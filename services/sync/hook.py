"""The post-commit hook: a few lines of POSIX sh that tell the watcher "this repo has a new commit".

It writes one event file into the spool (temp file + rename, so the watcher never reads half of it),
does no network and no git, never fails the commit, and runs the repository's own post-commit hook
(kept as `post-commit.user`) afterwards. An agent that kills its process group right after the commit
loses at most the event, and the watcher's periodic scan finds the commit anyway.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from services import state
from services.sync.gitrepo import Git

MARKER = "# coding-agents-sync post-commit hook"
USER_HOOK = "post-commit.user"

TEMPLATE = """#!/bin/sh
{marker} (installed by `python -m services.sync`).
# Tells the sync watcher about this commit: one file in its spool, no network, never fails the commit.
# The repository's own post-commit hook, if it had one, was kept as post-commit.user and runs after.
{{
  spool={spool}
  {{ [ -d "$spool" ] || mkdir -p "$spool"; }} &&
  pwd >"$spool/.$$.tmp" &&
  mv -f "$spool/.$$.tmp" "$spool/$$.event"
}} >/dev/null 2>&1 </dev/null || :
case $0 in */*) here=${{0%/*}} ;; *) here=. ;; esac
if [ -x "$here/{user}" ]; then exec "$here/{user}" "$@"; fi
exit 0
"""


def render(spool: Path) -> str:
    return TEMPLATE.format(marker=MARKER, spool=shlex.quote(str(spool)), user=USER_HOOK)


@dataclass(frozen=True)
class HookResult:
    installed: bool
    path: Path | None
    note: str = ""  # why it is not installed, or what was done to a hook already there


def hooks_dir(git: Git) -> tuple[Path | None, str]:
    """Where git looks for this repository's hooks, or None and why we must not install there."""
    local = git.run("config", "--local", "--get", "core.hooksPath", check=False).decode().strip()
    if local:
        path = Path(local).expanduser()
        return (path if path.is_absolute() else git.repo / path), ""
    inherited = git.run("config", "--get", "core.hooksPath", check=False).decode().strip()
    if inherited:
        # Set in the user's global config: that folder serves every repo on the machine, not ours
        # to rewrite. Commits are still found by the periodic scan.
        return None, f"core.hooksPath is set globally ({inherited}); commits are found by the periodic scan"
    common = git.run("rev-parse", "--git-common-dir").decode().strip()
    base = Path(common) if Path(common).is_absolute() else git.repo / common
    return base / "hooks", ""


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def install(git: Git, spool: Path) -> HookResult:
    """Install (or refresh) our hook, chaining to the repo's own; idempotent and quick when in place."""
    folder, why = hooks_dir(git)
    if folder is None:
        return HookResult(False, None, why)
    target = folder / "post-commit"
    common = git.run("rev-parse", "--git-common-dir").decode().strip()
    git_dir = Path(common) if Path(common).is_absolute() else git.repo / common
    if _inside(folder, git.repo) and not _inside(folder, git_dir):
        # A hooks folder inside the worktree is usually tracked: writing there would show up in
        # `git status` (and could get committed). Only use it when git ignores the hook file.
        rel = os.path.relpath(target, git.repo)
        if git.rc("check-ignore", "-q", rel) != 0:
            return HookResult(
                False,
                None,
                f"core.hooksPath {folder.name}/ is part of the repository; using the periodic scan",
            )
    content = render(spool)
    note = ""
    try:
        current = target.read_text(errors="replace") if target.is_file() else None
    except OSError:
        current = None
    if current == content:
        return HookResult(True, target)
    if os.path.lexists(target) and (current is None or MARKER not in current):
        user = folder / USER_HOOK
        if os.path.lexists(user):
            # Someone replaced our hook with theirs after we had kept an older one: theirs is the
            # hook that runs today, so it becomes post-commit.user; the older one is kept aside.
            Path(user).replace(folder / f"{USER_HOOK}.old")
        Path(target).replace(user)
        note = f"kept the existing hook as {USER_HOOK}"
    folder.mkdir(parents=True, exist_ok=True)
    state.atomic_write_bytes(target, content.encode(), mode=0o755)
    return HookResult(True, target, note)
