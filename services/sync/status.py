"""The sync watcher's status file: written by `services.sync`, served by `GET /api/sync`.

One JSON document in `$STATE/sync/status.json`, replaced atomically, so the gateway never reads a torn
file. Typed both ways: `write_status` takes a `SyncStatus`, `read_status` gives one back (a file from
an older watcher lacks some keys: they read as their defaults). Imports nothing heavy: the gateway
loads this module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from services import state
from services.config import Settings

E = TypeVar("E", bound=StrEnum)


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

    @classmethod
    def from_json(cls, data: object, where: str) -> RepoStatus:
        obj = _object(data, where)
        return cls(
            name=_value(obj, "name", (str,), None, where, required=True),
            state=_enum(obj, "state", RepoState, RepoState.PENDING, where),
            last_synced_commit=_value(obj, "last_synced_commit", (str, type(None)), None, where),
            last_synced_at=_value(obj, "last_synced_at", (int, float, type(None)), None, where),
            head=_value(obj, "head", (str, type(None)), None, where),
            pending=_value(obj, "pending", (int,), 0, where),
            last_error=_value(obj, "last_error", (str, type(None)), None, where),
            attempts=_value(obj, "attempts", (int,), 0, where),
            next_retry_at=_value(obj, "next_retry_at", (int, float, type(None)), None, where),
            skipped_large=[_text(p, f"{where}.skipped_large") for p in _list(obj, "skipped_large", where)],
            skipped=[_texts(s, f"{where}.skipped") for s in _list(obj, "skipped", where)],
            remote_path=_value(obj, "remote_path", (str,), "", where),
            note=_value(obj, "note", (str,), "", where),
        )


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

    @classmethod
    def from_json(cls, data: object, where: str) -> RestoreItem:
        obj = _object(data, where)
        return cls(
            name=_value(obj, "name", (str,), None, where, required=True),
            outcome=_enum(obj, "outcome", Outcome, Outcome.WAITING, where),
            path=_value(obj, "path", (str,), "", where),
            message=_value(obj, "message", (str,), "", where),
        )


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

    @classmethod
    def from_json(cls, data: object, where: str) -> RestoreStatus:
        obj = _object(data, where)
        items = _list(obj, "items", where)
        return cls(
            phase=_enum(obj, "phase", RestorePhase, RestorePhase.CHECKING, where),
            remote_root=_value(obj, "remote_root", (str,), "", where),
            total=_value(obj, "total", (int,), 0, where),
            done=_value(obj, "done", (int,), 0, where),
            started_at=_value(obj, "started_at", (int, float, type(None)), None, where),
            finished_at=_value(obj, "finished_at", (int, float, type(None)), None, where),
            reason=_value(obj, "reason", (str,), "", where),
            items=[RestoreItem.from_json(item, f"{where}.items[{i}]") for i, item in enumerate(items)],
        )


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

    @classmethod
    def from_json(cls, data: object) -> SyncStatus:
        """The status a file holds; keys it lacks (an older watcher wrote it) read as their defaults.
        Raises ValueError, naming the key, for a value of the wrong type or an unknown state."""
        obj = _object(data, "the status")
        repos = _list(obj, "repos", "")
        restore = obj.get("restore")
        return cls(
            state=_enum(obj, "state", OverallState, OverallState.IDLE, ""),
            reason=_value(obj, "reason", (str,), "", ""),
            remote_root=_value(obj, "remote_root", (str,), "", ""),
            repos=[RepoStatus.from_json(repo, f"repos[{i}]") for i, repo in enumerate(repos)],
            restore=None if restore is None else RestoreStatus.from_json(restore, "restore"),
            pid=_value(obj, "pid", (int, type(None)), None, ""),
            updated_at=_value(obj, "updated_at", (int, float, type(None)), None, ""),
        )


def status_path(settings: Settings) -> Path:
    return settings.files.sync_status


def write_status(path: Path, status: SyncStatus) -> None:
    status.updated_at = time.time()
    state.atomic_write_json(path, status.to_json(), mode=0o644)


def read_status(path: Path) -> SyncStatus:
    """The last status written; `idle` with no repos before the first one. Raises OSError, or
    ValueError saying what is wrong, for a file that cannot be read as a status."""
    try:
        data = state.read_json(path)
    except FileNotFoundError:
        return SyncStatus()
    try:
        return SyncStatus.from_json(data)
    except ValueError as exc:
        raise ValueError(f"{path} does not hold a sync status: {exc}") from None


# Reading the file back: a missing key is its default, a value of another type is an error.


def _object(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where} is {_kind(data)}, not an object")
    return data


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _value(
    obj: Mapping[str, Any],
    key: str,
    types: tuple[type, ...],
    default: Any,
    where: str,
    required: bool = False,
) -> Any:
    name = f"{where}.{key}" if where else key
    if key not in obj:
        if required:
            raise ValueError(f"{name} is missing")
        return default
    value = obj[key]
    # bool is an int to isinstance, never to this file.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ValueError(f"{name} is {_kind(value)}, not {' or '.join(_kind_name(t) for t in types)}")
    return value


def _kind_name(kind: type) -> str:
    return "null" if kind is type(None) else kind.__name__


def _enum(obj: Mapping[str, Any], key: str, enum: type[E], default: E, where: str) -> E:
    value = _value(obj, key, (str,), default.value, where)
    try:
        return enum(value)
    except ValueError:
        name = f"{where}.{key}" if where else key
        known = ", ".join(repr(member.value) for member in enum)
        raise ValueError(f"{name} is {value!r}, not one of {known}") from None


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value: list[Any] = _value(obj, key, (list,), [], where)
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} holds {_kind(value)}, not str")
    return value


def _texts(value: object, where: str) -> dict[str, str]:
    obj = _object(value, where)
    return {_text(k, where): _text(v, f"{where}.{k}") for k, v in obj.items()}
