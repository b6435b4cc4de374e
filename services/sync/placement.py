"""Put a restored repository in place, whatever ~/projects/NAME has become meanwhile.

The restore builds the repository in `~/projects/.restoring-NAME`; by the time it is ready the user
(or an agent) may have made a folder of that name. It never blocks the restore and is never touched
beyond what it asks for:
- nothing there: the build is renamed into place;
- an empty folder: the build's contents move into it (a shell may already be inside it);
- a git repository of the same project (a root commit or a remote URL in common): the restored refs
  are fetched into it; a branch that is only behind is fast-forwarded, one with other commits is kept
  as it is and the restored history becomes `BRANCH-restored`;
- anything else: the build goes beside it, as `NAME.restored` (`NAME.restored-2`, ...).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.sync.gitrepo import Git, GitError
from services.sync.status import Outcome

TMP_NAMESPACE = "refs/coding-agents-restore/"
ATTEMPTS = 5  # the folder may keep changing between a look and a rename; then it goes beside


@dataclass
class Placed:
    outcome: Outcome
    path: Path  # the repository now holding the restored history
    message: str  # one line: what was there and what was done
    branches: list[str] = field(default_factory=list)  # `-restored` branches made for diverged ones


def place(work: Path, target: Path, env: Mapping[str, str]) -> Placed:
    """Move the build in `work` to `target` or as close to it as the folder there allows; `work` is
    gone afterwards (renamed, emptied or fetched from)."""
    shown = f"~/projects/{target.name}"
    for _ in range(ATTEMPTS):
        if not os.path.lexists(target):
            try:
                Path(work).rename(target)
            except OSError:
                continue  # something appeared there meanwhile: look again
            return Placed(Outcome.RESTORED, target, f"restored as {shown}")
        if target.is_dir() and not target.is_symlink():
            if not any(target.iterdir()):
                if _move_children(work, target):
                    return Placed(
                        Outcome.INTO_EMPTY, target, f"{shown} was an empty folder: restored into it"
                    )
                continue
            if (target / ".git").exists() and same_project(Git(target, env), Git(work, env)):
                return merge_into(work, target, env)
        break
    beside = _beside(work, target)
    what = "a git repository of another project" if (target / ".git").exists() else "in use"
    message = f"{shown} is {what}: left as it is, restored beside it as ~/projects/{beside.name}"
    return Placed(Outcome.BESIDE, beside, message)


def _move_children(work: Path, target: Path) -> bool:
    """Move every entry of `work` into the empty `target`; False (and nothing moved) when a name was
    taken meanwhile."""
    moved: list[str] = []
    for entry in sorted(p.name for p in Path(work).iterdir()):
        if os.path.lexists(target / entry):
            for name in moved:  # put back what was moved: the caller tries again, or goes beside
                (target / name).rename(work / name)
            return False
        (work / entry).rename(target / entry)
        moved.append(entry)
    work.rmdir()
    return True


def _beside(work: Path, target: Path) -> Path:
    n = 1
    while True:
        candidate = target.with_name(f"{target.name}.restored" + (f"-{n}" if n > 1 else ""))
        if not os.path.lexists(candidate):
            try:
                Path(work).rename(candidate)
                return candidate
            except OSError:
                pass  # taken meanwhile
        n += 1


def _roots(git: Git) -> set[str]:
    out = git.run("rev-list", "--max-parents=0", "--all", check=False).decode()
    return set(out.split())


def _urls(git: Git) -> set[str]:
    return {url.rstrip("/").removesuffix(".git") for url in git.remotes().values() if url}


def same_project(theirs: Git, restored: Git) -> bool:
    """A root commit or a remote URL in common: a clone of the same project, not a namesake."""
    try:
        return bool(_roots(theirs) & _roots(restored)) or bool(_urls(theirs) & _urls(restored))
    except GitError:
        return False


def _is_ancestor(git: Git, older: str, newer: str) -> bool:
    return git.rc("merge-base", "--is-ancestor", older, newer) == 0


def _free_branch(git: Git, base: str) -> str:
    name, n = f"{base}-restored", 1
    while git.rc("show-ref", "--verify", "--quiet", f"refs/heads/{name}") == 0:
        n += 1
        name = f"{base}-restored-{n}"
    return name


def _merge_branch(git: Git, branch: str, sha: str, current: str | None) -> tuple[str, str] | None:
    """One restored branch (`heads/NAME`) into the user's clone: ("forwarded" | "added" |
    "diverged", the branch it landed on), or None when theirs already holds it."""
    local = _ref(git, f"refs/{branch}")
    short = branch.removeprefix("heads/")
    if local is None and f"refs/{branch}" == current:
        # Their clone has no commit on this branch yet: check the restored one out, which
        # git refuses if it would overwrite a file of theirs (then it becomes a branch).
        if git.rc("checkout", "-q", "-B", short, sha) == 0:
            return "forwarded", short
    elif local is None:
        git.run("update-ref", f"refs/{branch}", sha)
        return "added", short
    elif local == sha or _is_ancestor(git, sha, local):
        return None
    elif _is_ancestor(git, local, sha) and _fast_forward(git, f"refs/{branch}", sha, local, current):
        return "forwarded", short
    name = _free_branch(git, short)
    git.run("update-ref", f"refs/heads/{name}", sha)
    return "diverged", name


def _add_tags_and_remotes(git: Git, restored: Git) -> None:
    """Tags and remotes the user's clone lacks; a tag or remote of theirs with the same name wins."""
    for ref, sha in _refs(git, TMP_NAMESPACE + "tags/").items():
        tag = "refs/" + ref.removeprefix(TMP_NAMESPACE)
        if _ref(git, tag) is None:
            git.run("update-ref", tag, sha)
    for name, url in restored.remotes().items():
        if name not in git.remotes():
            git.rc("remote", "add", name, url)


def merge_into(work: Path, target: Path, env: Mapping[str, str]) -> Placed:
    """Fetch the build's refs into the user's clone without losing any of their work."""
    git = Git(target, env)
    shown = f"~/projects/{target.name}"
    try:
        git.run(
            "fetch", "-q", "--no-tags", str(work), f"+refs/*:{TMP_NAMESPACE}*", f"+HEAD:{TMP_NAMESPACE}HEAD"
        )
        current = git.symbolic_head()
        merged: dict[str, list[str]] = {"forwarded": [], "diverged": [], "added": []}
        for ref, sha in _refs(git, TMP_NAMESPACE + "heads/").items():
            if outcome := _merge_branch(git, ref.removeprefix(TMP_NAMESPACE), sha, current):
                merged[outcome[0]].append(outcome[1])
        forwarded, diverged, added = merged["forwarded"], merged["diverged"], merged["added"]
        head = _ref(git, f"{TMP_NAMESPACE}HEAD")
        if head and not git.run("for-each-ref", "--contains", head, "refs/heads/").strip():
            # A detached HEAD in the workspace copy: its commits get a branch of their own.
            name = _free_branch(git, "HEAD")
            git.run("update-ref", f"refs/heads/{name}", head)
            diverged.append(name)
        _add_tags_and_remotes(git, Git(work, env))
    finally:
        for ref in _refs(git, TMP_NAMESPACE):
            git.rc("update-ref", "-d", ref)
        shutil.rmtree(work, ignore_errors=True)
    if diverged:
        names = ", ".join(diverged)
        message = (
            f"{shown} is a clone of this project with other commits: kept as it is; "
            f"the restored history is on branch {names}"
        )
        return Placed(Outcome.BRANCH, target, message, diverged)
    if forwarded or added:
        parts = [f"fast-forwarded {', '.join(forwarded)}"] if forwarded else []
        parts += [f"added branch {', '.join(added)}"] if added else []
        return Placed(
            Outcome.FAST_FORWARDED, target, f"{shown} is a clone of this project: {'; '.join(parts)}"
        )
    return Placed(
        Outcome.UP_TO_DATE, target, f"{shown} is a clone of this project and already has its history"
    )


def _fast_forward(git: Git, ref: str, sha: str, old: str, current: str | None) -> bool:
    if ref != current:
        return git.rc("update-ref", ref, sha, old) == 0
    # The checked-out branch: the work tree moves too, and git refuses if that would touch their
    # uncommitted changes (then the history goes to a branch instead).
    return git.rc("merge", "--ff-only", "-q", sha) == 0


def _ref(git: Git, ref: str) -> str | None:
    out = git.run("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False).decode().strip()
    return out or None


def _refs(git: Git, prefix: str) -> dict[str, str]:
    out = git.run("for-each-ref", "--format=%(refname) %(objectname)", prefix).decode()
    return {ref: sha for ref, _, sha in (line.partition(" ") for line in out.splitlines())}
