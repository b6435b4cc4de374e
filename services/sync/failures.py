"""How a workspace call failed, without databricks-sdk: the watcher imports the SDK (~1.5 CPU-seconds)
only once a workspace is configured, through services.sync.remote."""

from __future__ import annotations

import logging
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


class OnceLog:
    """Warnings said once per key: a file too large or a name that is not UTF-8 is reported when it is
    met, not again at every scan."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._said: set[str] = set()

    def warn(self, key: str, message: str, *args: object) -> None:
        if key not in self._said:
            self._said.add(key)
            self._log.warning(message, *args)
