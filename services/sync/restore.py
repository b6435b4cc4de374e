"""Bring back projects that the workspace holds but the (fresh) container does not.

With a bundle, the repository comes back with its history, branches, tags and remote URLs; without
one (over 10 MB, or never written), the mirrored files become a new repository with one commit. A
repository is built in `~/projects/.restoring-NAME`, so a half-restored one is never mistaken for the
user's, then put in place by services.sync.placement (whatever ~/projects/NAME has become meanwhile).
"""

from __future__ import annotations

import json
import shutil
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from services.sync.gitrepo import Git, GitError
from services.sync.placement import Placed, place
from services.sync.plan import MAX_FILE_BYTES, desired

if TYPE_CHECKING:
    from services.sync.remote import Remote

BUNDLE_SUFFIX = ".bundle"
MANIFEST_SUFFIX = ".sync.json"
RESTORING = ".restoring-"


@dataclass
class Found:
    """What the workspace holds for one repo name."""

    folder: bool = False
    bundle: bool = False
    manifest: bool = False


@dataclass
class Restored:
    name: str
    synced: str | None  # the commit whose tree the workspace folder holds, when known
    refs: str | None  # refs digest matching the workspace bundle (no need to upload it again)
    manifest: str | None  # the commit the workspace manifest names, if there is one
    how: str
    commits: int = 0
    refresh_bundle: bool = False  # the restore made a commit: the workspace bundle lacks it


@dataclass
class RestoreContext:
    remote: Remote
    pool: Executor
    projects: Path
    tmp: Path
    env: dict[str, str]
    author: tuple[str, str]  # (name, email) for commits the restore makes
    max_bytes: int = MAX_FILE_BYTES
    log: list[str] = field(default_factory=list)


def candidates(listing: list[tuple[str, bool, int]]) -> dict[str, Found]:
    found: dict[str, Found] = {}
    for name, is_dir, _ in listing:
        if is_dir:
            found.setdefault(name, Found()).folder = True
        elif name.endswith(MANIFEST_SUFFIX):
            found.setdefault(name[: -len(MANIFEST_SUFFIX)], Found()).manifest = True
        elif name.endswith(BUNDLE_SUFFIX):
            found.setdefault(name[: -len(BUNDLE_SUFFIX)], Found()).bundle = True
    return {n: f for n, f in found.items() if n and not n.startswith(RESTORING) and "/" not in n}


def _safe_rel(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return bool(parts) and not any(p in ("", ".", "..", ".git") for p in parts) and not rel.startswith("/")


def download_tree(ctx: RestoreContext, name: str) -> dict[str, bytes]:
    walked = ctx.remote.walk(ctx.remote.path(name), ctx.pool)
    if walked is None:
        return {}
    files = sorted(rel for rel in walked[0] if _safe_rel(rel))
    datas = ctx.pool.map(lambda rel: ctx.remote.download(ctx.remote.path(name, rel)), files)
    return {rel: data for rel, data in zip(files, datas, strict=True) if data is not None}


def _write(work: Path, rel: str, data: bytes) -> None:
    path = work / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _commit(ctx: RestoreContext, git: Git, message: str) -> None:
    name, email = ctx.author
    git.run("add", "-A", "-f")
    if git.rc("diff", "--cached", "--quiet") != 0 or git.head() is None:
        git.run(
            "-c",
            f"user.name={name}",
            "-c",
            f"user.email={email}",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        )


def _bundle_heads(git: Git, bundle: Path) -> dict[str, str]:
    heads: dict[str, str] = {}
    for line in git.run("bundle", "list-heads", str(bundle)).decode(errors="replace").splitlines():
        sha, _, ref = line.partition(" ")
        if ref:
            heads[ref] = sha
    return heads


def _checkout(git: Git, heads: dict[str, str], manifest: dict[str, Any] | None) -> None:
    """Point HEAD where it was when the bundle was made: the manifest names the branch (or null for
    a detached HEAD); without a manifest, a branch at the bundle's HEAD is the best guess."""
    head_sha = heads.get("HEAD")
    branches = {r: s for r, s in heads.items() if r.startswith("refs/heads/")}
    head_ref = manifest.get("head_ref") if manifest else None
    same = sorted(r for r, s in branches.items() if s == head_sha)
    guess = [r for r in ("refs/heads/main", "refs/heads/master") if r in same] + same
    if isinstance(head_ref, str) and head_ref in branches:
        git.run("symbolic-ref", "HEAD", head_ref)
    elif head_sha and guess and (manifest is None or "head_ref" not in manifest):
        git.run("symbolic-ref", "HEAD", guess[0])
    elif head_sha:
        git.run("update-ref", "--no-deref", "HEAD", head_sha)
    elif branches:
        git.run("symbolic-ref", "HEAD", sorted(branches)[0])
    else:
        return
    git.run("reset", "-q", "--hard")


def _load_manifest(ctx: RestoreContext, name: str) -> dict[str, Any] | None:
    raw = ctx.remote.download(f"{ctx.remote.root}/{name}{MANIFEST_SUFFIX}")
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def restore_repo(ctx: RestoreContext, name: str, found: Found) -> tuple[Restored, Placed] | None:
    """Restore one repository (safe to call from several threads for different names); None when the
    workspace holds nothing to restore it from."""
    work = ctx.projects / f"{RESTORING}{name}"
    shutil.rmtree(work, ignore_errors=True)
    manifest = _load_manifest(ctx, name) if found.manifest else None
    bundle_data = ctx.remote.download(f"{ctx.remote.root}/{name}{BUNDLE_SUFFIX}") if found.bundle else None
    if bundle_data is None and not found.folder:
        return None
    ctx.projects.mkdir(parents=True, exist_ok=True)
    work.mkdir()
    try:
        result = _build(ctx, name, work, manifest, bundle_data, found)
        placed = place(work, ctx.projects / name, ctx.env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result, placed


def _build(
    ctx: RestoreContext,
    name: str,
    work: Path,
    manifest: dict[str, Any] | None,
    bundle_data: bytes | None,
    found: Found,
) -> Restored:
    git = Git(work, ctx.env)
    git.run("init", "-q")
    manifest_commit = str(manifest.get("commit") or "?") if manifest is not None else None
    if bundle_data is not None:
        try:
            return _from_bundle(ctx, name, work, git, manifest, manifest_commit, bundle_data, found)
        except GitError as exc:
            if not found.folder:
                raise
            # An unreadable bundle still leaves the files: better a repo without history than none.
            ctx.log.append(f"bundle unusable ({exc}): restoring the files instead")
            shutil.rmtree(work)
            work.mkdir()
            git.run("init", "-q")
    files = download_tree(ctx, name)
    for rel, data in files.items():
        _write(work, rel, data)
    if not files:
        return Restored(name, None, None, manifest_commit, "as an empty repository (no files, no bundle)")
    _commit(ctx, git, "Restored from the workspace mirror (no bundle: history not kept)")
    how = "from its files (no bundle: one commit)"
    return Restored(name, git.head(), None, manifest_commit, how, 1, refresh_bundle=True)


def _from_bundle(
    ctx: RestoreContext,
    name: str,
    work: Path,
    git: Git,
    manifest: dict[str, Any] | None,
    manifest_commit: str | None,
    bundle_data: bytes,
    found: Found,
) -> Restored:
    ctx.tmp.mkdir(parents=True, exist_ok=True)
    bundle = ctx.tmp / f"restore-{uuid.uuid4().hex}.bundle"
    try:
        bundle.write_bytes(bundle_data)
        git.run("fetch", "-q", "--update-head-ok", str(bundle), "+refs/*:refs/*")
        heads = _bundle_heads(git, bundle)
    finally:
        bundle.unlink(missing_ok=True)
    _checkout(git, heads, manifest)
    remotes = manifest.get("remotes") if manifest else None
    for remote_name, url in remotes.items() if isinstance(remotes, dict) else ():
        if git.rc("remote", "add", str(remote_name), str(url)) != 0:
            ctx.log.append(f"could not add remote {remote_name}")
    refs = git.refs_digest()
    head = git.head()
    if head is None:
        raise GitError("the bundle holds no commit")  # we only ever upload bundles that do
    commits = git.count(None, head)
    how = f"from its bundle ({commits} commits)"
    if manifest_commit and git.has_commit(manifest_commit):
        # The manifest vouches that the folder holds exactly this commit's tree.
        return Restored(name, manifest_commit, refs, manifest_commit, how, commits)
    if not found.folder:
        return Restored(name, None, refs, manifest_commit, how, commits)
    # No valid manifest: the folder may hold commits made after the last bundle. Keep its files as a
    # commit on top, so the next sync cannot roll the workspace back to the bundle's HEAD.
    synced = _overlay(ctx, name, work, git)
    moved = synced != head
    return Restored(
        name, synced, None if moved else refs, manifest_commit, how, commits, refresh_bundle=moved
    )


def _overlay(ctx: RestoreContext, name: str, work: Path, git: Git) -> str | None:
    files = download_tree(ctx, name)
    want = desired(git.tree("HEAD"), ctx.max_bytes)
    changed = False
    for rel in want.files:
        if rel not in files and (work / rel).exists():
            (work / rel).unlink()
            changed = True
    for rel, data in files.items():
        path = work / rel
        if not (path.is_file() and not path.is_symlink() and path.read_bytes() == data):
            _write(work, rel, data)
            changed = True
    if changed:
        _commit(ctx, git, "Restored workspace files newer than the last bundle")
        ctx.log.append("kept workspace files newer than the bundle as a new commit")
    return git.head()


def bundle_path(remote: Remote, name: str) -> str:
    return f"{remote.root}/{name}{BUNDLE_SUFFIX}"


def manifest_path(remote: Remote, name: str) -> str:
    return f"{remote.root}/{name}{MANIFEST_SUFFIX}"
