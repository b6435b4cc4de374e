"""`python -m services.sync`: mirror every commit in ~/projects to the workspace (supervisord program).

Stops within 3 s of SIGTERM: the journal is consistent at every instant (SQLite transactions, and
each workspace call is idempotent), so a call still in flight is simply abandoned and redone at the
next start. Exit status (services/entry.py): 0 stopped, 2 bad settings, 3 another watcher holds the lock.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

from services import entry, state
from services.config import Settings
from services.sync.watcher import SyncOptions, Watcher

log = logging.getLogger("sync")
# supervisord's stopwaitsecs is 3: exit on our own well before it sends SIGKILL.
STOP_DEADLINE_SECONDS = 2.0


def _flush_and_exit(code: int) -> None:
    logging.shutdown()
    sys.stdout.flush()
    # Threads may sit in an HTTP call for up to the http timeout; nothing they hold needs saving.
    os._exit(code)


def _deadline() -> None:
    time.sleep(STOP_DEADLINE_SECONDS)
    log.info(
        "still busy %.0f s after the stop signal: exiting anyway (the journal is consistent)",
        STOP_DEADLINE_SECONDS,
    )
    _flush_and_exit(0)


def acquire_lock(settings: Settings) -> int | None:
    try:
        return state.pid_lock(settings.files.sync_lock)
    except state.Locked as exc:
        log.error("another sync watcher is running (pid %s) on %s", exc.holder, settings.state_dir)
        return None


def options(settings: Settings) -> SyncOptions:
    """The watcher's options from Settings (services/config.py parses the variables)."""
    knobs = settings.sync
    return SyncOptions(
        scan_interval=knobs.scan_seconds,
        concurrency=knobs.concurrency,
        bundle_idle=knobs.bundle_idle_seconds,
        backoff_max=knobs.max_backoff_seconds,
    )


def main(settings: Settings) -> int:
    if acquire_lock(settings) is None:
        return entry.EXIT_LOCKED
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("stopping (%s)", signal.Signals(signum).name)
            stop.set()
            threading.Thread(target=_deadline, name="stop-deadline", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    Watcher(settings, options(settings), stop).run()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    entry.run("sync", main, exit=_flush_and_exit)
