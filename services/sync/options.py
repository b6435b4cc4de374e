"""The sync watcher's timings and limits (README, "Workspace sync": the CODING_AGENTS_SYNC_* settings)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from services.sync.plan import MAX_FILE_BYTES

log = logging.getLogger("sync")


@dataclass(frozen=True)
class SyncOptions:
    poll_interval: float = 0.1  # spool polling: commit -> sync start within this
    scan_interval: float = 30.0  # safety net for commits whose hook did not run
    concurrency: int = 4
    bundle_idle: float = 5.0  # refresh the bundle once a repo has been quiet this long
    http_timeout: float = 60.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    op_tries: int = 3  # quick retries of one call before the whole attempt backs off
    op_delay: float = 0.2
    max_file_bytes: int = MAX_FILE_BYTES
    heartbeat: float = 15.0  # the status file is rewritten at least this often
    # The agents' conversations (agent_sessions.py): copied into ~/projects/.agent-sessions this
    # often; the globs are agents.yaml's `sessions:` unless given.
    sessions_interval: float = 30.0
    session_globs: tuple[str, ...] | None = None

    def backoff(self, attempts: int, retry_after: float) -> float:
        """Seconds before the next try: doubling up to `backoff_max`, jittered (so repos that failed
        together do not retry together), never before the workspace's Retry-After."""
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempts - 1))
        return max(delay * random.uniform(0.8, 1.2), retry_after)
