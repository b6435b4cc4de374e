"""The sync watcher: finds commits, syncs them, keeps the journal and the status file.

One coordinating thread owns the journal, git reads and the status; a small thread pool does the
workspace calls. The coordinator polls the spool every `poll_interval` (the post-commit hook's events),
rescans `~/projects` every `scan_interval` (or when its folder list changes), and syncs one repo at a
time to its newest HEAD, so quick commits coalesce into one sync. The jobs live beside it:
services.sync.coordinator (one run: connect, restore, the loop), .connect (reaching the workspace),
.restorer (bringing projects back), .discovery, .mirror, .bundles and .report (the status file).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from services import state
from services.config import Settings
from services.sync import notice
from services.sync.coordinator import Coordinator
from services.sync.failures import Stopped
from services.sync.journal import Journal
from services.sync.mirror import Tally
from services.sync.options import SyncOptions
from services.sync.status import RestoreStatus

__all__ = ["SyncOptions", "Watcher"]


class Watcher:
    """`run()` until `stop` is set; `connected` is set once the workspace answered (tests and the
    bench wait on it), and the figures count what was done."""

    def __init__(
        self,
        settings: Settings,
        options: SyncOptions | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or SyncOptions()
        self.stop = stop or threading.Event()
        self.connected = threading.Event()
        self.tally = Tally()

    @property
    def syncs(self) -> int:
        return self.tally.syncs

    def run(self) -> None:
        """Until `stop` is set: connect, restore what is missing, then watch and sync."""
        sync_dir = self.settings.files.sync
        for folder in (sync_dir, sync_dir / "spool", sync_dir / "tmp"):
            state.ensure_dir(folder)
        restore = None
        if notice.fresh_container(self.settings):
            # Projects may be coming back: say so at once (the shells print it, the page shows it).
            restore = RestoreStatus(started_at=time.time())
            notice.write_notice(self.settings, notice.checking_text())
        journal = Journal(self.settings.files.sync_journal)
        pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="sync")
        coordinator = Coordinator(
            self.settings, self.options, self.stop, self.connected, self.tally, journal, pool, restore
        )
        try:
            coordinator.run()
        except Stopped:
            pass
        finally:
            coordinator.status.write(force=True)
            pool.shutdown(wait=False, cancel_futures=True)
            journal.close()
