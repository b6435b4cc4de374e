"""Make a workspace folder hold exactly the staged deploy set, sending only what changed.

The folder keeps `.deploy-manifest.json` (sha256 per file) from the last upload; it is read first, so
a second run uploads the files whose hash differs and deletes the ones no longer staged. While files
change, the remote manifest lists only the files known to be current: a run cut short redoes the rest.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied
from databricks.sdk.service.workspace import ImportFormat, ObjectType

from services.deploy.errors import api_step
from services.deploy.progress import DeployError, Progress, UsageError
from services.deploy.stage import MANIFEST, MANIFEST_VERSION, Staged

STEP = "upload"
WORKERS = 8  # parallel imports: a first upload is ~450 small files, one HTTP round trip each
WORKSPACE_PREFIX = "/Workspace"


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0


def workspace_path(raw: str) -> str:
    """The /Workspace/... form of a folder path, which both the workspace API and apps deploy accept."""
    path = posixpath.normpath(raw.strip()) if raw.strip() else ""
    if not path.startswith("/") or ".." in path.split("/") or path in ("/", WORKSPACE_PREFIX):
        raise UsageError(
            f"--source-path {raw!r} must be an absolute workspace folder such as /Workspace/Users/..."
        )
    return path if path.startswith(WORKSPACE_PREFIX + "/") else WORKSPACE_PREFIX + path


def _relative(root: str, path: str) -> str | None:
    """path relative to root; the API may answer in either the /Workspace/... or the /Users/... form."""
    bare_root = root.removeprefix(WORKSPACE_PREFIX)
    for base in (root, bare_root):
        if path.startswith(base + "/"):
            return path[len(base) + 1 :]
    return None


def _write_access_hint(root: str) -> dict[type[Exception], str]:
    return {PermissionDenied: f"you cannot write to {root}: pick a folder you own with --source-path"}


def _remote_files(w: WorkspaceClient, root: str) -> dict[str, str] | None:
    """What the folder holds, as rel path -> sha256 ('' when unknown); None if there is no folder."""
    hints = _write_access_hint(root)
    try:
        with api_step(STEP, f"looking up {root}", hints):
            status = w.workspace.get_status(root)
    except DeployError as exc:
        if isinstance(exc.__cause__, NotFound):
            return None
        raise
    if status.object_type != ObjectType.DIRECTORY:
        raise DeployError(
            STEP, f"{root} exists and is a {status.object_type}, not a folder", "pick another --source-path"
        )
    try:
        with api_step(STEP, f"reading {root}/{MANIFEST}", hints):
            data = w.workspace.download(f"{root}/{MANIFEST}").read()
    except DeployError as exc:
        if not isinstance(exc.__cause__, NotFound):
            raise
        data = None
    if data is None:
        if listed := _listed(w, root):
            raise DeployError(
                STEP,
                f"{root} holds {len(listed)} files but no {MANIFEST}: it was not made by scripts/deploy",
                "pick an empty or new folder with --source-path, or empty this one "
                f"(databricks workspace delete --recursive {root})",
            )
        return {}
    try:
        files = json.loads(data)["files"]
        return {str(k): str(v) for k, v in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return dict.fromkeys(_listed(w, root), "")  # our marker, but unreadable: every file is stale


def _listed(w: WorkspaceClient, root: str) -> list[str]:
    """Every file under root (relative), the manifest left out."""
    with api_step(STEP, f"listing {root}", _write_access_hint(root)):
        return [
            rel
            for info in w.workspace.list(root, recursive=True)
            if info.object_type != ObjectType.DIRECTORY
            and (rel := _relative(root, info.path or "")) is not None
            and rel != MANIFEST
        ]


def _write_manifest(w: WorkspaceClient, root: str, files: dict[str, str]) -> None:
    data = json.dumps({"version": MANIFEST_VERSION, "files": files}, indent=1, sort_keys=True).encode()
    with api_step(STEP, f"writing {root}/{MANIFEST}", _write_access_hint(root)):
        w.workspace.upload(f"{root}/{MANIFEST}", io.BytesIO(data), format=ImportFormat.AUTO, overwrite=True)


def _leaf_dirs(rels: Iterable[str]) -> list[str]:
    """Parent folders of rels, without those that another one contains (mkdirs makes parents)."""
    dirs = {posixpath.dirname(rel) for rel in rels} - {""}
    return sorted(d for d in dirs if not any(other.startswith(d + "/") for other in dirs))


def _parallel(items: list[str], work: Callable[[str], None]) -> None:
    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        for _ in pool.map(work, items):  # re-raises the first failure
            pass


def sync(w: WorkspaceClient, staged: Staged, root: str, progress: Progress) -> SyncResult:
    remote = _remote_files(w, root)
    hints = _write_access_hint(root)
    if remote is None:
        with api_step(STEP, f"creating {root}", hints):
            w.workspace.mkdirs(root)
        progress.line(f"created {root}")
        remote = {}
    local = staged.files
    result = SyncResult(
        uploaded=sorted(p for p, h in local.items() if remote.get(p) != h),
        deleted=sorted(p for p in remote if p not in local),
    )
    result.unchanged = len(local) - len(result.uploaded)
    if not result.uploaded and not result.deleted:
        return result
    if remote:
        _write_manifest(w, root, {p: h for p, h in remote.items() if local.get(p) == h})

    def mkdirs(rel: str) -> None:
        with api_step(STEP, f"creating {root}/{rel}", hints):
            w.workspace.mkdirs(f"{root}/{rel}")

    def upload(rel: str) -> None:
        # AUTO keeps .py files as files; SOURCE (the SDK's default) would turn them into notebooks.
        with api_step(STEP, f"uploading {rel}", hints), (staged.root / rel).open("rb") as f:
            w.workspace.upload(f"{root}/{rel}", f, format=ImportFormat.AUTO, overwrite=True)

    def delete(rel: str) -> None:
        try:
            with api_step(STEP, f"deleting {root}/{rel}", hints):
                w.workspace.delete(f"{root}/{rel}", recursive=True)
        except DeployError as exc:
            if not isinstance(exc.__cause__, NotFound):  # already gone: a run cut short deleted it
                raise

    _parallel(_leaf_dirs(result.uploaded), mkdirs)
    _parallel(result.uploaded, upload)
    _parallel(result.deleted, delete)
    # Folders that held only deleted files go too, deepest first (the deploy snapshot copies them).
    kept = {posixpath.dirname(p) for p in local}
    kept |= {d for p in kept for d in _ancestors(p)}
    emptied = {d for p in result.deleted for d in [posixpath.dirname(p), *_ancestors(posixpath.dirname(p))]}
    for folder in sorted(emptied - kept - {""}, key=lambda d: -d.count("/")):
        if _ancestors(folder) & (emptied - kept):
            continue  # its parent goes too, recursively
        delete(folder)
    _write_manifest(w, root, local)
    return result


def _ancestors(rel: str) -> set[str]:
    parts = rel.split("/")
    return {"/".join(parts[:i]) for i in range(1, len(parts))}
