"""Who owns this app, found in the background and retried until the workspace answers.

Until the owner is known every request but /health gets 503 with the reason: access control must
never fail open, and a workspace outage at boot must not need a restart once it is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.databricks import Owner, WorkspaceUnavailable
from services.platform_log import announce, resolved

log = logging.getLogger("gateway.owner")

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
# One platform-log line per distinct reason: a retry with the same reason says nothing new.
PLATFORM_LOG_KEY = "owner-lookup"


@dataclass(frozen=True)
class OwnerStatus:
    owner: Owner | None
    reason: str  # why the owner is unknown; empty once known
    attempts: int
    next_retry_at: float | None  # time.time() of the next attempt while unknown


class OwnerResolver:
    """Runs `lookup` (blocking, in an executor) until it succeeds; `on_found` runs once after that."""

    def __init__(
        self,
        lookup: Callable[[], Owner],
        on_found: Callable[[Owner], None] | None = None,
        first_retry: float = FIRST_RETRY_SECONDS,
        max_retry: float = MAX_RETRY_SECONDS,
    ) -> None:
        self._lookup = lookup
        self._on_found = on_found
        self._first_retry = first_retry
        self._max_retry = max_retry
        self.status = OwnerStatus(None, "looking up the app's owner in the workspace", 0, None)
        self._wake = asyncio.Event()

    @property
    def owner(self) -> Owner | None:
        return self.status.owner

    def retry_now(self) -> None:
        """Cut the current backoff short (a user is waiting on the 503 page)."""
        self._wake.set()

    async def run(self) -> Owner:
        loop = asyncio.get_running_loop()
        delay = self._first_retry
        attempts = 0
        while True:
            attempts += 1
            try:
                owner = await loop.run_in_executor(None, self._lookup)
            except WorkspaceUnavailable as exc:
                reason = str(exc)
            except Exception as exc:  # a bug in lookup must not end the retries or open the door
                log.exception("owner lookup failed unexpectedly")
                reason = f"owner lookup failed: {type(exc).__name__}"
            else:
                self.status = OwnerStatus(owner, "", attempts, None)
                log.info("app owner: %s (from %s)", owner.email, owner.source)
                resolved(PLATFORM_LOG_KEY, f"owner lookup succeeded: the app's owner is {owner.email}")
                if self._on_found is not None:
                    try:
                        await loop.run_in_executor(None, self._on_found, owner)
                    except Exception:
                        log.exception("setting up the owner's workspace identity failed")
                return owner
            self.status = OwnerStatus(None, reason, attempts, time.time() + delay)
            announce(
                f"owner lookup failed: {reason}",
                f"retrying every {self._max_retry:g} s at most",
                key=PLATFORM_LOG_KEY,
            )
            log.warning("owner unknown (attempt %d, retry in %.0f s): %s", attempts, delay, reason)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            delay = min(delay * 2, self._max_retry)
