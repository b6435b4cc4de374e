"""The sync watcher's status file: written by `services.sync`, served by `GET /api/sync`.

One JSON document in `$STATE/sync/status.json`, replaced atomically, so the gateway never reads a torn
file. Imports nothing heavy: the gateway loads this module.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from services import state
from services.config import Settings


class OverallState(StrEnum):
    IDLE = "idle"  # every repo synced (or nothing to sync)
    SYNCING = "syncing"  # a repo is being synced or waits for it
    ERROR = "error"  # a repo's last attempt failed (retrying), or the workspace/owner is unknown
    NO_WORKSPACE = "no workspace"  # DATABRICKS_HOST/DATABRICKS_TOKEN not set: nothing is mirrored


class RepoState(StrEnum):
    SYNCED = "synced"
    PENDING = "pending"  # HEAD is ahead of the workspace; a sync is queued
    SYNCING = "syncing"
    ERROR = "error"  # the last attempt failed; retried after `next_retry_at`
    EMPTY = "empty"  # a repository without commits: nothing to mirror yet
    REMOVED = "removed"  # gone locally; the workspace copy is kept


@dataclass
class RepoStatus:
    name: str
    state: RepoState
    last_synced_commit: str | None = None
    last_synced_at: float | None = None
    head: str | None = None
    pending: int = 0  # commits in HEAD that the workspace does not hold yet
    last_error: str | None = None
    attempts: int = 0
    next_retry_at: float | None = None
    skipped_large: list[str] = field(default_factory=list)  # over 10 MB: not uploaded
    skipped: list[dict[str, str]] = field(default_factory=list)  # {path, reason}: refused names etc.
    remote_path: str = ""
    note: str = ""


class RestorePhase(StrEnum):
    CHECKING = "checking"  # a fresh container: connecting and listing the workspace folder
    RESTORING = "restoring"  # `total` projects to bring back, `done` of them handled so far
    DONE = "done"


class Outcome(StrEnum):
    """What became of one project the workspace holds and ~/projects lacked at start."""

    WAITING = "waiting"
    RESTORED = "restored"  # ~/projects/NAME was free: restored there
    INTO_EMPTY = "into empty folder"  # an empty folder of that name was there: restored into it
    UP_TO_DATE = "already there"  # a clone of the same project already held the restored history
    FAST_FORWARDED = "fast-forwarded"  # a clone of the same project, behind: fast-forwarded to it
    BRANCH = "as a branch"  # a clone of the same project with other commits: history as branch(es)
    BESIDE = "beside"  # something else had the name: restored as NAME.restored
    FAILED = "failed"


# Outcomes a user should read: their folder was not simply filled in.
NOTEWORTHY = {Outcome.BRANCH, Outcome.BESIDE, Outcome.FAILED}


@dataclass
class RestoreItem:
    name: str  # the project's name in the workspace
    outcome: Outcome = Outcome.WAITING
    path: str = ""  # where it is now, relative to HOME (`projects/app.restored`)
    message: str = ""  # one line for the page, the log and the status


@dataclass
class RestoreStatus:
    """The start-up restore, while it runs and after (the page's notice above the terminal)."""

    phase: RestorePhase = RestorePhase.CHECKING
    remote_root: str = ""  # /Workspace/Users/{owner}/projects, once known
    total: int = 0
    done: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    reason: str = ""  # why it is stuck (the workspace is unreachable...), while it is
    items: list[RestoreItem] = field(default_factory=list)


@dataclass
class SyncStatus:
    state: OverallState = OverallState.IDLE
    reason: str = ""  # why the whole watcher is in `error` or `no workspace`
    remote_root: str = ""
    repos: list[RepoStatus] = field(default_factory=list)
    restore: RestoreStatus | None = None  # None: no restore ran since the watcher started
    pid: int | None = None
    updated_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status_path(settings: Settings) -> Path:
    return settings.files.sync_status


def write_status(path: Path, status: SyncStatus) -> None:
    status.updated_at = time.time()
    state.atomic_write_json(path, status.to_json(), mode=0o644)


def read_status(path: Path) -> dict[str, Any]:
    """The last status written, with the reader's clock; `idle` with no repos before the first one."""
    try:
        data = state.read_json(path)
    except FileNotFoundError:
        data = {"state": OverallState.IDLE.value, "repos": []}
    if not isinstance(data, dict) or not isinstance(data.get("repos"), list):
        raise ValueError(f"{path} does not hold a sync status object")
    data["now"] = time.time()  # lets the page show "synced 5 s ago" without trusting its own clock
    return data
