"""The setup runner's status file: written by `services.setup`, read by the gateway.

One JSON document in `$STATE/setup/status.json`, replaced atomically on every change, so a reader
never sees a torn file even if the runner is killed mid-write. Its shape is what
`GET /api/setup-status` returns (README, "Setup status").
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from services import state
from services.config import Settings

LOG_TAIL_LINES = 12


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # already in place (the pinned version is installed) or not applicable

    @property
    def finished(self) -> bool:
        return self in (StepState.OK, StepState.FAILED, StepState.SKIPPED)

    @property
    def good(self) -> bool:
        return self in (StepState.OK, StepState.SKIPPED)


class SetupState(StrEnum):
    PENDING = "pending"  # the runner has not written anything yet
    RUNNING = "running"
    DONE = "done"  # every step ok or skipped
    FAILED = "failed"  # finished, at least one step failed


@dataclass
class StepStatus:
    id: str
    title: str
    kind: str
    state: StepState = StepState.PENDING
    after: list[str] = field(default_factory=list)
    version: str = ""
    agent: bool = False
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    reason: str = ""  # one line: why it failed, or why it was skipped
    log_tail: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


@dataclass
class SetupStatus:
    state: SetupState = SetupState.PENDING
    started: float | None = None
    finished: float | None = None
    runner_pid: int | None = None
    steps: list[StepStatus] = field(default_factory=list)
    reason: str = ""  # why the whole run failed before or outside any step (a broken registry)

    def step(self, step_id: str) -> StepStatus:
        return next(s for s in self.steps if s.id == step_id)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["now"] = time.time()  # lets the page show elapsed times without trusting its own clock
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SetupStatus:
        steps = [
            StepStatus(**{**s, "state": StepState(s["state"])})
            for s in data.get("steps", [])
            if isinstance(s, dict)
        ]
        return cls(
            state=SetupState(data.get("state", "pending")),
            started=data.get("started"),
            finished=data.get("finished"),
            runner_pid=data.get("runner_pid"),
            steps=steps,
            reason=str(data.get("reason", "")),
        )


def status_path(settings: Settings) -> Path:
    return settings.files.setup_status


def write_status(path: Path, status: SetupStatus) -> None:
    state.atomic_write_json(path, status.to_json(), mode=0o644)


def read_status(path: Path) -> SetupStatus:
    """The last written status; PENDING when the runner has not written one yet.

    A run the file calls running whose runner is gone (killed, crashed) is reported as failed, so
    the page offers Retry instead of showing progress forever.
    """
    try:
        data = state.read_json(path)
    except FileNotFoundError:
        return SetupStatus()
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    status = SetupStatus.from_json(data)
    if status.state == SetupState.RUNNING and status.runner_pid and not _alive(status.runner_pid):
        status.state = SetupState.FAILED
        status.reason = "the setup runner stopped before it finished; retry to finish"
        for step in status.steps:
            if step.state == StepState.RUNNING:
                step.state, step.reason = StepState.FAILED, "interrupted: the setup runner stopped"
    return status


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def request_path(settings: Settings) -> Path:
    """What the next run should do, left by the gateway before it asks supervisord to start setup."""
    return settings.files.setup_request
