"""How a workspace call failed, without databricks-sdk: the watcher imports the SDK (~1.5 CPU-seconds)
only once a workspace is configured, through services.sync.remote."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    TRANSIENT = "transient"  # retry with backoff (5xx, 429, timeouts, connection errors)
    AUTH = "auth"  # token refused: retry slowly, no point trying other files now
    PERMANENT = "permanent"  # this file can never be uploaded: skip it, say why


@dataclass(frozen=True)
class Failure:
    kind: Kind
    message: str
    retry_after: float = 0.0


class OpFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Stopped(Exception):
    """The watcher is stopping: abandon the call (it is idempotent and will be done again)."""
