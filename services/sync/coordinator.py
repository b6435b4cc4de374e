"""One run of the sync watcher, on its coordinating thread: connect (retrying), restore what is
missing, then the loop that takes in commits and hands them to the mirror and the bundles.

The journal and the pool are open for the whole run; the jobs that need the workspace exist once it
answered (`Running`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from services import databricks
from services.config import Settings
from services.credentials.store import has_owner_token
from services.sync import connect
from services.sync.agent_sessions import AgentSessions, patterns_from_registry
from services.sync.bundles import Bundles
from services.sync.connect import Connected
from services.sync.discovery import Discovery
from services.sync.failures import OnceLog, OpFailed, Stopped
from services.sync.gitrepo import GitError, git_env
from services.sync.journal import Journal
from services.sync.mirror import Mirror, Tally
from services.sync.options import SyncOptions
from services.sync.report import Snapshot, StatusFile
from services.sync.restore import RestoreContext
from services.sync.restorer import restore_missing
from services.sync.status import RestorePhase, RestoreStatus, status_path

T = TypeVar("T")

log = logging.getLogger("sync")
# How soon a token connected in the page starts the sync (one read of a small file per poll).
CREDENTIAL_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Running:
    """Connected: the jobs that need the workspace."""

    link: Connected
    mirror: Mirror
    bundles: Bundles


class Coordinator:
    """One run of the watcher, on its coordinating thread: the journal and pool are open throughout."""

    def __init__(
        self,
        settings: Settings,
        options: SyncOptions,
        stop: threading.Event,
        connected: threading.Event,
        tally: Tally,
        journal: Journal,
        pool: ThreadPoolExecutor,
        restore: RestoreStatus | None,
    ) -> None:
        self.settings, self.options, self.stop = settings, options, stop
        self.connected = connected  # set once the workspace answered
        self.tally = tally
        self.journal = journal
        self.pool = pool
        self.tmp = self.settings.files.sync / "tmp"
        self.env = git_env(self.settings.home)
        self.warnings = OnceLog(log)
        self.status = StatusFile(
            status_path(self.settings), self.options.heartbeat, self._snapshot, self.warnings
        )
        self.discovery = Discovery(
            self.settings,
            self.options,
            journal,
            self.settings.files.sync / "spool",
            self.env,
            self.warnings,
            self.status.mark,
        )
        # Before the first scan: a repo the journal knows already is the user's, never restored over.
        self.known_at_start = {record.name for record in journal.all()}
        self.overall_error = ""  # why the whole watcher is stuck
        self.restore = restore  # the start-up restore's progress, once there is one
        self.restore_errors: dict[str, str] = {}
        self.running: Running | None = None  # None until the workspace answered
        globs = options.session_globs if options.session_globs is not None else patterns_from_registry()
        self.sessions = AgentSessions(
            settings.home, settings.projects_dir, globs, self.env, options.max_file_bytes, self.warnings
        )
        self._next_sessions = 0.0

    def run(self) -> None:
        if not has_owner_token(self.settings):
            self._idle_without_workspace()  # returns once the owner connects the workspace
        self.discovery.scan()  # local only: hooks in place and HEADs known even while the workspace is down
        running = self._connect()
        self._restore_all(running.link)
        self._loop(running)

    def _snapshot(self) -> Snapshot:
        discovery = self.discovery
        records = self.journal.all()
        return Snapshot(
            has_workspace=self.running is not None or has_owner_token(self.settings),
            overall_error=self.overall_error,
            remote_root=self.running.link.remote.root if self.running else "",
            restore=self.restore,
            restore_errors=self.restore_errors,
            records=records,
            local=discovery.local.keys(),
            heads=discovery.heads,
            git_errors=discovery.git_errors,
            hooks=discovery.hooks,
            syncing=self.running.mirror.syncing if self.running else None,
            pending=discovery.pending_counts({r.name: r for r in records}, self.restore_errors),
            pid=os.getpid(),
        )

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped()

    def _wait(self, seconds: float) -> None:
        """Sleep, while still taking in commits and keeping the status fresh."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._between()
            self._sleep(min(left, self.options.poll_interval))

    def _between(self) -> None:
        """Keep up with events while waiting: spool, bundles, scans, status."""
        names, rescan = self.discovery.drain_spool()
        if self.running is not None:
            self.running.bundles.poll()
        self.discovery.catch_up(names, rescan)
        self.status.write()

    def _idle_without_workspace(self) -> None:
        """Wait for a workspace credential: the owner may connect one in the page at any time."""
        while not has_owner_token(self.settings):
            missing = (
                "DATABRICKS_HOST is not set"
                if not self.settings.databricks_host
                else "no token of the owner yet: connect your workspace in the page (or set DATABRICKS_TOKEN)"
            )
            reason = f"no workspace configured ({missing}): nothing is mirrored"
            if reason != self.overall_error:
                self.overall_error = reason
                log.info("%s; waiting", reason)
            self.status.write(force=True)
            self._sleep(min(self.options.heartbeat, CREDENTIAL_POLL_SECONDS))
        self.overall_error = ""
        log.info("the owner's workspace credential is here: connecting")

    def _keep_trying(
        self,
        attempt: Callable[[], T],
        errors: type[BaseException] | tuple[type[BaseException], ...],
        describe: Callable[[BaseException], str],
    ) -> T:
        """`attempt()` until it succeeds, showing each failure in the status and, once per reason, on
        the platform log, backing off; raises Stopped when the watcher stops meanwhile."""
        delay = self.options.backoff_base
        while True:
            try:
                return attempt()
            except errors as exc:
                self.overall_error = describe(exc)
                log.warning("%s; retrying in %.0f s", self.overall_error, delay)
                root = self.running.link.remote.root if self.running else ""
                connect.announce_failure(self.settings, databricks.describe_error(exc), exc, root)
                if self.restore is not None:
                    self.restore.reason = self.overall_error
                self.status.write(force=True)
                self._wait(delay)
                delay = min(delay * 2, self.options.backoff_max)

    def _connect(self) -> Running:
        from services.sync.remote import Remote  # the SDK: only now that a workspace is configured

        owner, client = self._keep_trying(
            lambda: connect.reach(self.settings, self.options.http_timeout),
            Exception,
            lambda exc: f"cannot reach the workspace: {databricks.describe_error(exc)}",
        )
        root = connect.remote_root(owner)
        if self.journal.use_remote(root):
            log.info("the workspace folder changed to %s: every repo is synced again in full", root)
        remote = Remote(client, root, self.stop, self.options.op_tries, self.options.op_delay)
        link = Connected(self.journal, remote, self.pool, owner)
        self.running = Running(
            link,
            Mirror(
                link,
                self.options,
                self.stop,
                self.discovery,
                self.status,
                self.warnings,
                self.tally,
                self._between,
            ),
            Bundles(link, self.options, self.discovery, self.tmp, self.status.mark),
        )
        self.overall_error = ""
        if self.restore is not None:
            self.restore.remote_root, self.restore.reason = root, ""
        self.connected.set()
        log.info("mirroring %s to %s", self.settings.projects_dir, root)
        return self.running

    def _restore_all(self, link: Connected) -> None:
        remote = link.remote
        listing = self._keep_trying(
            lambda: connect.list_root(remote), OpFailed, connect.describe_listing(remote)
        )
        self.overall_error = ""
        connect.announce_connected(self.settings, remote.root)
        if self.restore is None:
            self.restore = RestoreStatus(RestorePhase.RESTORING, started_at=time.time())
        restore = self.restore
        restore.remote_root, restore.reason = remote.root, ""
        ctx = RestoreContext(
            remote,
            link.pool,
            self.settings.projects_dir,
            self.tmp,
            self.env,
            link.author,
            self.options.max_file_bytes,
        )

        def progressed() -> None:
            # A restored repo shows as itself at once, not as "removed" until the next scan.
            self.discovery.scan()
            self.status.mark()
            self.status.write(force=True)

        errors = restore_missing(
            self.settings,
            ctx,
            self.journal,
            listing,
            self.known_at_start,
            restore,
            progressed,
            self.stop,
            self.options.poll_interval,
        )
        self.restore_errors.update(errors)
        if not restore.items:
            self.restore = None  # nothing came back: nothing for the page to say
        try:
            self.sessions.restore_home()
        except OSError as exc:
            log.warning("agent conversations not copied back into %s: %s", self.settings.home, exc)

    def _keep_sessions(self) -> None:
        """Only from the loop, i.e. after the restore: an empty store of a fresh container must not be
        what the mirror learns first."""
        if time.monotonic() < self._next_sessions:
            return
        self._next_sessions = time.monotonic() + self.options.sessions_interval
        try:
            copied = self.sessions.snapshot()
        except (OSError, GitError) as exc:
            self.warnings.warn(f"sessions:{exc}", "agent conversations not copied: %s", exc)
            return
        if copied.committed:
            log.info("agent conversations: %d file(s) copied for the workspace", copied.files)

    def _loop(self, running: Running) -> None:
        mirror, bundles = running.mirror, running.bundles
        self.discovery.scan()
        while True:
            if self.stop.is_set():
                raise Stopped()
            self._between()
            name = mirror.next_due(bundles.manifest_in_flight())
            if name is not None:
                mirror.sync(name)
                continue
            name = bundles.due()
            if name is not None:
                bundles.start(name)
                continue
            self._keep_sessions()
            self.status.write()
            self._sleep(self.options.poll_interval)
