"""What the status file says: `build_status` is a pure function of the watcher's state (a `Snapshot`),
and `StatusFile` decides when to write it (soon after a change, and at least every `heartbeat`).

The file's types and its reader are in services.sync.status, which the gateway loads; this module is
the watcher's side only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.sync.failures import OnceLog
from services.sync.gitrepo import GitError
from services.sync.hook import HookResult
from services.sync.journal import RepoRecord
from services.sync.status import (
    OverallState,
    RepoState,
    RepoStatus,
    RestoreStatus,
    SyncStatus,
    write_status,
)

log = logging.getLogger("sync")
# Changes coming in quick succession are written together, at most this often.
COALESCE_SECONDS = 0.25


@dataclass(frozen=True)
class Snapshot:
    """Everything the status file shows, as the watcher holds it at one instant."""

    has_workspace: bool
    overall_error: str  # why the whole watcher is stuck ("" while it is not)
    remote_root: str  # "" until connected
    restore: RestoreStatus | None  # None: no restore to speak of
    restore_errors: Mapping[str, str]  # repos whose restore failed
    records: Sequence[RepoRecord]  # the journal
    local: Collection[str]  # the repositories in ~/projects now
    heads: Mapping[str, str | None]
    git_errors: Mapping[str, str]  # repos whose HEAD cannot be read
    hooks: Mapping[str, HookResult]
    syncing: str | None  # the repo being synced right now
    pending: Mapping[str, int]  # commits not in the workspace yet, per readable repo
    pid: int


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _repo_status(snap: Snapshot, record: RepoRecord) -> RepoStatus:
    name = record.name
    head = snap.heads.get(name)
    repo = RepoStatus(
        name=name,
        state=RepoState.SYNCED,
        last_synced_commit=record.synced,
        last_synced_at=record.synced_at,
        head=head,
        last_error=record.last_error,
        attempts=record.attempts,
        skipped_large=record.skipped_large,
        skipped=[{"path": p, "reason": r} for p, r in sorted(record.rejected.items())],
        # Remote.path's shape, without needing the (SDK-bound) Remote here.
        remote_path=f"{snap.remote_root}/{name}" if snap.remote_root else "",
        note=record.note,
    )
    hook_result = snap.hooks.get(name)
    if hook_result is not None and not hook_result.installed:
        repo.note = _joined(repo.note, hook_result.note)
    if record.bundle_error:
        repo.note = _joined(repo.note, f"bundle: {record.bundle_error}")
    if name in snap.restore_errors:
        repo.state, repo.last_error = RepoState.ERROR, snap.restore_errors[name]
    elif name not in snap.local:
        repo.state = RepoState.REMOVED
        repo.note = "removed locally; the workspace copy is kept"
    elif name in snap.git_errors:
        repo.state, repo.last_error = RepoState.ERROR, snap.git_errors[name]
    elif head is None:
        repo.state = RepoState.EMPTY
    else:
        repo.pending = snap.pending.get(name, 0)
        if snap.syncing == name:
            repo.state = RepoState.SYNCING
        elif record.attempts:
            repo.state = RepoState.ERROR
            repo.next_retry_at = record.next_try
        elif repo.pending:
            repo.state = RepoState.PENDING
    return repo


def build_status(snap: Snapshot) -> SyncStatus:
    status = SyncStatus(pid=snap.pid, remote_root=snap.remote_root, restore=snap.restore)
    if not snap.has_workspace:
        status.state = OverallState.NO_WORKSPACE
        status.reason = snap.overall_error
        return status
    records = {r.name: r for r in snap.records}
    for name in sorted(set(records) | set(snap.local) | set(snap.restore_errors)):
        status.repos.append(_repo_status(snap, records.get(name) or RepoRecord(name)))
    states = {r.state for r in status.repos}
    if snap.overall_error:
        status.state, status.reason = OverallState.ERROR, snap.overall_error
    elif RepoState.ERROR in states:
        status.state = OverallState.ERROR
    elif states & {RepoState.SYNCING, RepoState.PENDING}:
        status.state = OverallState.SYNCING
    return status


class StatusFile:
    """Writes `build_status(snapshot())` to `path`: at once when forced, soon after `mark()`, and at
    least every `heartbeat` seconds."""

    def __init__(
        self, path: Path, heartbeat: float, snapshot: Callable[[], Snapshot], warnings: OnceLog
    ) -> None:
        self.path = path
        self.heartbeat = heartbeat
        self.snapshot = snapshot
        self.warnings = warnings
        self._dirty = True
        self._written = 0.0

    def mark(self) -> None:
        self._dirty = True

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        due = self._dirty and now - self._written >= COALESCE_SECONDS
        if not (force or due or now - self._written >= self.heartbeat):
            return
        try:
            write_status(self.path, build_status(self.snapshot()))
        except (OSError, GitError) as exc:  # GitError: counting a repo's pending commits
            self.warnings.warn("status", "cannot write %s: %s", self.path, exc)
            return
        self._dirty = False
        self._written = now
