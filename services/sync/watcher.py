"""The sync watcher: finds commits, syncs them, keeps the journal and the status file.

One coordinating thread owns the journal, git reads and the status; a small thread pool does the
workspace calls. The coordinator polls the spool every `poll_interval` (the post-commit hook's events),
rescans `~/projects` every `scan_interval` (or when its folder list changes), and syncs one repo at a
time to its newest HEAD, so quick commits coalesce into one sync.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from services import databricks, state
from services.config import Settings
from services.credentials.store import has_owner_token
from services.sync import connect, hook, notice
from services.sync.failures import Failure, Kind, OpFailed, Stopped
from services.sync.gitrepo import BlobReader, Git, GitError, find_repos, git_env, is_utf8
from services.sync.journal import Journal, RepoRecord
from services.sync.plan import MAX_FILE_BYTES, Plan, desired, full, incremental
from services.sync.restore import RestoreContext, bundle_path, manifest_path
from services.sync.restorer import restore_missing
from services.sync.status import (
    OverallState,
    RepoState,
    RepoStatus,
    RestorePhase,
    RestoreStatus,
    SyncStatus,
    status_path,
    write_status,
)

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from services.sync.remote import Remote

T = TypeVar("T")

log = logging.getLogger("sync")
# How soon a token pasted in the page starts the sync (one stat of a file per poll).
CREDENTIAL_POLL_SECONDS = 1.0


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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SyncOptions:
        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                log.warning("%s=%r is not a number; using %s", name, raw, default)
                return default
            return value if value > 0 else default

        return cls(
            scan_interval=number("CODING_AGENTS_SYNC_SCAN_SECONDS", cls.scan_interval),
            concurrency=max(1, int(number("CODING_AGENTS_SYNC_CONCURRENCY", cls.concurrency))),
            bundle_idle=number("CODING_AGENTS_SYNC_BUNDLE_IDLE_SECONDS", cls.bundle_idle),
            backoff_max=number("CODING_AGENTS_SYNC_MAX_BACKOFF_SECONDS", cls.backoff_max),
        )


def classify_error(exc: BaseException) -> Failure:
    from services.sync.remote import classify  # loaded by then: the call that raised came through it

    return classify(exc)


class AttemptFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class _Op:
    kind: str  # upload | delete | rmtree | mkdirs
    path: str  # relative to the repo folder
    blob: str = ""


@dataclass
class _BundleJob:
    name: str
    synced: str | None  # the tree in the workspace when the job started
    refs: str
    head_ref: str | None
    remotes: dict[str, str]
    future: Future[object] | None = None
    manifest_phase: bool = False
    uploaded: bool = False
    note: str = ""


def _short(sha: str | None) -> str:
    return sha[:7] if sha else "-"


class Watcher:
    def __init__(
        self,
        settings: Settings,
        options: SyncOptions | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or SyncOptions()
        self.stop = stop or threading.Event()
        self.dir = settings.state_dir / "sync"
        self.spool = self.dir / "spool"
        self.tmp = self.dir / "tmp"
        self.status_file = status_path(settings)
        self.env = git_env(settings.home)
        self.journal: Journal | None = None
        self.remote: Remote | None = None
        self.owner: databricks.Owner | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.local: dict[str, Path] = {}
        self.heads: dict[str, str | None] = {}
        self.git_errors: dict[str, str] = {}
        self.hooks: dict[str, hook.HookResult] = {}
        self.restore_errors: dict[str, str] = {}
        self.restore: RestoreStatus | None = None  # the start-up restore's progress, once there is one
        self.bundle_jobs: dict[str, _BundleJob] = {}
        self.syncing: str | None = None
        self.overall_error = ""
        self.connected = threading.Event()  # tests and the bench wait on this
        self._counts: dict[str, tuple[str | None, str | None, int]] = {}
        self._next_scan = 0.0
        self._projects_mtime: float | None = None
        self._status_dirty = True
        self._status_written = 0.0
        self._warned: set[str] = set()
        self._known_at_start: set[str] = set()
        # Figures for the log, the tests and the bench.
        self.syncs = 0
        self.uploads = 0
        self.deletes = 0

    # -- lifecycle --------------------------------------------------------------------------------

    def run(self) -> None:
        """Until `stop` is set: connect, restore what is missing, then watch and sync."""
        for folder in (self.dir, self.spool, self.tmp):
            state.ensure_dir(folder)
        if notice.fresh_container(self.settings):
            # Projects may be coming back: say so at once (the shells print it, the page shows it).
            self.restore = RestoreStatus(started_at=time.time())
            notice.write_notice(self.settings, notice.checking_text())
        self.journal = Journal(self.dir / notice.JOURNAL_NAME)
        # Before the first scan: a repo the journal knows already is the user's, never restored over.
        self._known_at_start = {record.name for record in self.journal.all()}
        self.pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="sync")
        try:
            if not has_owner_token(self.settings):
                self._idle_without_workspace()  # returns once the owner connects the workspace
            self._scan()  # local only: hooks in place and HEADs known even while the workspace is down
            self._connect()
            self._restore_all()
            self._loop()
        except Stopped:
            pass
        finally:
            self._write_status(force=True)
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.journal.close()

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped()

    def _wait(self, seconds: float) -> None:
        """Sleep, while still taking in commits and keeping the status fresh."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._between()
            self._sleep(min(left, self.options.poll_interval))

    def _idle_without_workspace(self) -> None:
        """Wait for a workspace credential: the owner may paste one in the page at any time."""
        while not has_owner_token(self.settings):
            missing = (
                "DATABRICKS_HOST is not set"
                if not self.settings.databricks_host
                else (
                    "no token of the owner yet: connect your workspace in the page (or set DATABRICKS_TOKEN)"
                )
            )
            reason = f"no workspace configured ({missing}): nothing is mirrored"
            if reason != self.overall_error:
                self.overall_error = reason
                log.info("%s; waiting", reason)
            self._write_status(force=True)
            self._sleep(min(self.options.heartbeat, CREDENTIAL_POLL_SECONDS))
        self.overall_error = ""
        log.info("the owner's workspace credential is here: connecting")

    def _resolve_owner(self) -> databricks.Owner:
        if self.settings.owner_override:
            return databricks.lookup_owner(self.settings)
        # The gateway publishes the owner it looked up (Apps mode); ask SCIM ourselves otherwise.
        return databricks.load_owner(self.settings) or databricks.lookup_owner(self.settings)

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
                root = self.remote.root if self.remote else ""
                connect.announce_failure(self.settings, databricks.describe_error(exc), exc, root)
                if self.restore is not None:
                    self.restore.reason = self.overall_error
                self._write_status(force=True)
                self._wait(delay)
                delay = min(delay * 2, self.options.backoff_max)

    def _connect(self) -> None:
        # Only now, with a workspace configured: importing databricks-sdk takes ~1.5 CPU-seconds.
        from services.sync.remote import Remote, workspace_client

        def connect() -> tuple[databricks.Owner, WorkspaceClient]:
            return self._resolve_owner(), workspace_client(self.settings, self.options.http_timeout)

        owner, client = self._keep_trying(
            connect, Exception, lambda exc: f"cannot reach the workspace: {databricks.describe_error(exc)}"
        )
        self.owner = owner
        root = f"/Users/{owner.email}/projects"
        assert self.journal is not None
        if self.journal.use_remote(root):
            log.info("the workspace folder changed to %s: every repo is synced again in full", root)
        self.remote = Remote(client, root, self.stop, self.options.op_tries, self.options.op_delay)
        self.overall_error = ""
        if self.restore is not None:
            self.restore.remote_root, self.restore.reason = root, ""
        self.connected.set()
        log.info("mirroring %s to %s", self.settings.projects_dir, root)

    # -- restore ----------------------------------------------------------------------------------

    def _restore_all(self) -> None:
        assert self.remote is not None and self.journal is not None and self.pool is not None
        remote = self.remote
        listing = self._keep_trying(
            lambda: connect.list_root(remote), OpFailed, connect.describe_listing(remote)
        )
        self.overall_error = ""
        connect.announce_connected(self.settings, remote.root)
        if self.restore is None:
            self.restore = RestoreStatus(RestorePhase.RESTORING, started_at=time.time())
        self.restore.remote_root, self.restore.reason = remote.root, ""
        assert self.owner is not None
        ctx = RestoreContext(
            self.remote,
            self.pool,
            self.settings.projects_dir,
            self.tmp,
            self.env,
            (self.owner.display_name or self.owner.email, self.owner.email),
            self.options.max_file_bytes,
        )

        def progressed() -> None:
            self._scan()  # a restored repo shows as itself at once, not as "removed" until the next scan
            self._status_dirty = True
            self._write_status(force=True)

        errors = restore_missing(
            self.settings,
            ctx,
            self.journal,
            listing,
            self._known_at_start,
            self.restore,
            progressed,
            self.stop,
            self.options.poll_interval,
        )
        self.restore_errors.update(errors)
        if not self.restore.items:
            self.restore = None  # nothing came back: nothing for the page to say

    # -- discovery --------------------------------------------------------------------------------

    def _loop(self) -> None:
        self._scan()
        while True:
            if self.stop.is_set():
                raise Stopped()
            self._between()
            name = self._next_due()
            if name is not None:
                self._sync(name)
                continue
            name = self._bundle_due()
            if name is not None:
                self._start_bundle(name)
                continue
            self._write_status()
            self._sleep(self.options.poll_interval)

    def _between(self) -> None:
        """Keep up with events while waiting: spool, scans, status."""
        names, rescan = self._drain_spool()
        self._poll_bundles()
        now = time.monotonic()
        try:
            mtime = self.settings.projects_dir.stat().st_mtime
        except OSError:
            mtime = None
        if mtime != self._projects_mtime:
            # A folder appeared or went away: look soon (a `git clone` needs a moment to make .git).
            self._projects_mtime = mtime
            self._next_scan = min(self._next_scan, now + 0.3)
        if rescan or now >= self._next_scan:
            self._scan()
        else:
            for name in names:
                self._refresh(name)
        self._write_status()

    def _drain_spool(self) -> tuple[set[str], bool]:
        names: set[str] = set()
        rescan = False
        try:
            entries = list(os.scandir(self.spool))
        except FileNotFoundError:
            state.ensure_dir(self.spool)
            return names, False
        projects = self.settings.projects_dir.resolve()
        for entry in entries:
            if entry.name.startswith("."):
                # A hook killed between writing and renaming leaves its temp file behind.
                try:
                    if time.time() - entry.stat().st_mtime > 60:
                        os.unlink(entry.path)
                except OSError:
                    pass
                continue
            try:
                with open(entry.path, "rb") as f:
                    raw = f.read()
                os.unlink(entry.path)
            except OSError:
                continue
            repo = Path(os.fsdecode(raw.rstrip(b"\n")))
            try:
                inside = repo.resolve().parent == projects
            except OSError:
                inside = False
            if inside and repo.name in self.local:
                names.add(repo.name)
            else:
                rescan = True  # a repo we have not met yet (or a moved one): look at everything
        return names, rescan

    def _scan(self) -> None:
        assert self.journal is not None
        self._next_scan = time.monotonic() + self.options.scan_interval
        found = {}
        for name, path in find_repos(self.settings.projects_dir).items():
            if not is_utf8(name):
                self._warn_once(f"bad-name:{name}", "skipping %r: its name is not valid UTF-8", name)
                continue
            found[name] = path
        for name in set(self.local) - set(found):
            self.local.pop(name, None)
            self.heads.pop(name, None)
        for name, path in found.items():
            self.local[name] = path
            self._install_hook(name, path)
            self._refresh(name)
        for record in self.journal.all():
            if record.name not in found and record.removed_at is None:
                self.journal.set_removed(record.name, time.time())
                log.info("[%s] removed locally; the workspace copy is kept", record.name)
                self._status_dirty = True

    def _install_hook(self, name: str, path: Path) -> None:
        try:
            result = hook.install(Git(path, self.env), self.spool)
        except (GitError, OSError) as exc:
            result = hook.HookResult(False, None, f"hook not installed: {exc}")
        previous = self.hooks.get(name)
        self.hooks[name] = result
        if previous != result and (result.note or not result.installed):
            log.info("[%s] %s", name, result.note or "hook not installed")

    def _refresh(self, name: str) -> None:
        assert self.journal is not None
        path = self.local.get(name)
        if path is None:
            return
        try:
            head = Git(path, self.env).head()
        except GitError as exc:
            self.git_errors[name] = str(exc)
            self._status_dirty = True
            return
        self.git_errors.pop(name, None)
        record = self.journal.ensure(name)
        if record.removed_at is not None:
            self.journal.set_removed(name, None)
        if head != record.target:
            self.journal.set_target(name, head)
        if self.heads.get(name, "unset") != head:
            self.heads[name] = head
            self._status_dirty = True

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    # -- scheduling -------------------------------------------------------------------------------

    def _needs_sync(self, record: RepoRecord, unfinished: set[str]) -> bool:
        head = self.heads.get(record.name)
        return head is not None and (head != record.synced or record.name in unfinished)

    def _next_due(self) -> str | None:
        assert self.journal is not None
        now = time.time()
        unfinished = self.journal.unfinished()
        due = [
            r
            for r in self.journal.all()
            if r.name in self.local
            and r.name not in self.git_errors
            # While its manifest is on the wire, the tree it vouches for must not change.
            and not (r.name in self.bundle_jobs and self.bundle_jobs[r.name].manifest_phase)
            and r.next_try <= now
            and self._needs_sync(r, unfinished)
        ]
        return min(due, key=lambda r: (r.next_try, r.name)).name if due else None

    def _bundle_due(self) -> str | None:
        assert self.journal is not None
        now = time.time()
        unfinished = self.journal.unfinished()
        for r in self.journal.all():
            if (
                r.bundle_due is not None
                and r.bundle_due <= now
                and r.name not in self.bundle_jobs
                and r.name in self.local
                and not self._needs_sync(r, unfinished)
                and r.synced is not None
            ):
                return r.name
        return None

    def _backoff(self, attempts: int, retry_after: float) -> float:
        delay = min(self.options.backoff_max, self.options.backoff_base * 2.0 ** max(0, attempts - 1))
        return max(delay * random.uniform(0.8, 1.2), retry_after)

    # -- one sync ---------------------------------------------------------------------------------

    def _sync(self, name: str) -> None:
        assert self.journal is not None
        record = self.journal.ensure(name)
        git = Git(self.local[name], self.env)
        try:
            head = git.head()
        except GitError as exc:
            self.git_errors[name] = str(exc)
            return
        if head is None:
            return
        self.heads[name] = head
        self.syncing = name
        self._write_status(force=True)
        started = time.monotonic()
        try:
            uploaded, deleted = self._sync_to(name, git, record, head)
        except Stopped:
            raise
        except (AttemptFailed, OpFailed, GitError) as exc:
            failure = (
                exc.failure
                if isinstance(exc, AttemptFailed | OpFailed)
                else Failure(Kind.TRANSIENT, str(exc))
            )
            delay = self._backoff(record.attempts + 1, failure.retry_after)
            attempts = self.journal.fail(name, failure.message, time.time() + delay)
            log.warning(
                "[%s] sync of %s failed (attempt %d): %s; retrying in %.1f s",
                name,
                _short(head),
                attempts,
                failure.message,
                delay,
            )
        else:
            self.syncs += 1
            log.info(
                "[%s] synced %s (%d uploaded, %d deleted) in %.1f s",
                name,
                _short(head),
                uploaded,
                deleted,
                time.monotonic() - started,
            )
        finally:
            self.syncing = None
            self._status_dirty = True
            self._write_status(force=True)

    def _sync_to(self, name: str, git: Git, record: RepoRecord, head: str) -> tuple[int, int]:
        assert self.journal is not None and self.remote is not None and self.pool is not None
        remote = self.remote
        want = desired(git.tree(head), self.options.max_file_bytes)
        for path in want.skipped_large:
            self._warn_once(f"large:{name}:{path}", "[%s] %s is over 10 MB: not uploaded", name, path)
        if record.manifest is not None and record.manifest != head:
            # The manifest vouches for the tree now in the workspace; withdraw it before that changes.
            remote.delete(manifest_path(remote, name))
            self.journal.set_manifest(name, None)
        progress = self.journal.progress(name)
        if progress and record.attempts == 0:
            log.info("[%s] resuming an interrupted sync (%d changes already done)", name, len(progress))
        base = record.synced if record.synced and git.has_commit(record.synced) else None
        if base is not None:
            plan = incremental(git.tree(base, sizes=False), set(record.skipped_large), want, progress)
        else:
            walked = remote.walk(remote.path(name), self.pool)
            if walked is None:
                remote.mkdirs(remote.path(name))
                walked = ({}, set())
            plan = full(set(walked[0]), walked[1], want, progress)
        # Refusals stand while the file is unchanged; a changed one is tried again below.
        retried = {p for p, _ in plan.uploads}
        rejected = {p: why for p, why in record.rejected.items() if p in want.files and p not in retried}
        rejected.update(want.rejected)
        uploaded, deleted = self._execute(name, git, plan, rejected)
        self.journal.succeed(name, head, want.skipped_large, rejected, time.time() + self.options.bundle_idle)
        return uploaded, deleted

    def _execute(self, name: str, git: Git, plan: Plan, rejected: dict[str, str]) -> tuple[int, int]:
        assert self.remote is not None
        remote = self.remote
        before_up, before_del = self.uploads, self.deletes
        self._run(name, [_Op("delete", p) for p in plan.deletes], rejected)
        for folder in plan.rmdirs:  # deepest first: a parent is only empty once its children are gone
            remote.rmdir(remote.path(name, folder))
        self._run(name, [_Op("rmtree", d) for d in plan.rmtrees], rejected)
        self._run(name, [_Op("mkdirs", d) for d in plan.mkdirs], rejected)
        with git.blobs() as blobs:
            self._run(name, [_Op("upload", p, b) for p, b in plan.uploads], rejected, blobs)
        return self.uploads - before_up, self.deletes - before_del

    def _call(self, name: str, op: _Op, blobs: BlobReader | None) -> Callable[[], None]:
        assert self.remote is not None
        remote = self.remote
        target = remote.path(name, op.path)
        if op.kind == "upload":
            assert blobs is not None
            data = blobs.read(op.blob)  # read here: the pool only does network
            return lambda: remote.upload(target, data)
        if op.kind == "delete":
            return lambda: remote.delete(target)
        if op.kind == "rmtree":
            return lambda: remote.delete(target, recursive=True)
        return lambda: remote.mkdirs(target)

    def _run(
        self, name: str, ops: Iterable[_Op], rejected: dict[str, str], blobs: BlobReader | None = None
    ) -> None:
        """Run ops on the pool (bounded, so at most a few file contents are in memory), journaling each
        success as it lands. A failure fails the attempt, but the other ops still run (so the next
        attempt has less to do) unless failures come in a streak or the token is refused."""
        assert self.pool is not None and self.journal is not None
        pending = iter(ops)
        in_flight: dict[Future[None], _Op] = {}
        first: Failure | None = None
        retry_after = 0.0
        streak = 0
        limit = 2 * self.options.concurrency
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < limit:
                op = next(pending, None)
                if op is None:
                    exhausted = True
                    break
                in_flight[self.pool.submit(self._call(name, op, blobs))] = op
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=self.options.poll_interval, return_when=FIRST_COMPLETED)
            if self.stop.is_set():
                raise Stopped()
            for future in done:
                op = in_flight.pop(future)
                try:
                    future.result()
                except Stopped:
                    raise
                except OpFailed as exc:
                    if exc.failure.kind is Kind.PERMANENT and op.kind == "upload":
                        rejected[op.path] = exc.failure.message
                        log.warning(
                            "[%s] %s refused by the workspace: %s", name, op.path, exc.failure.message
                        )
                        continue
                    streak += 1
                    first = first or exc.failure
                    retry_after = max(retry_after, exc.failure.retry_after)
                    if exc.failure.kind is Kind.AUTH or streak >= limit:
                        exhausted = True  # no point trying the rest now
                except Exception as exc:
                    first = first or classify_error(exc)
                else:
                    streak = 0
                    if op.kind == "upload":
                        self.journal.record(name, op.path, op.blob)
                        self.uploads += 1
                    elif op.kind == "delete":
                        self.journal.record(name, op.path, "")
                        self.deletes += 1
            self._between()
        if first is not None:
            raise AttemptFailed(Failure(first.kind, first.message, retry_after))

    # -- bundle + manifest ------------------------------------------------------------------------

    def _start_bundle(self, name: str) -> None:
        """Refresh the repo's bundle on the pool, so a big repo's bundle never delays a commit."""
        assert self.journal is not None and self.pool is not None
        record = self.journal.ensure(name)
        git = Git(self.local[name], self.env)
        try:
            refs = git.refs_digest()
            job = _BundleJob(name, record.synced, refs, git.symbolic_head(), git.remotes())
        except GitError as exc:
            self.journal.bundle_failed(name, str(exc), time.time() + self._backoff(2, 0.0))
            return
        if refs == record.bundle_refs:
            job.future = self.pool.submit(lambda: (True, ""))  # the workspace has this very bundle
        else:
            job.future = self.pool.submit(self._make_bundle, name, git)
        self.bundle_jobs[name] = job

    def _make_bundle(self, name: str, git: Git) -> tuple[bool, str]:
        """(uploaded, note): create the bundle and upload it, or remove a stale one if it is too big."""
        assert self.remote is not None
        limit = self.options.max_file_bytes
        too_big = "over 10 MB: not uploaded, a restore gets the files without history"
        if _pack_kib(git) * 1024 > 2 * limit:
            self.remote.delete(bundle_path(self.remote, name))
            return False, too_big
        out = self.tmp / f"{uuid.uuid4().hex}.bundle"
        try:
            if not git.bundle(out):
                return False, ""
            if out.stat().st_size > limit:
                self.remote.delete(bundle_path(self.remote, name))
                return False, too_big
            self.remote.upload(bundle_path(self.remote, name), out.read_bytes())
        finally:
            out.unlink(missing_ok=True)
        return True, ""

    def _poll_bundles(self) -> None:
        """Move finished bundle jobs on: bundle uploaded -> manifest (only while the repo is idle, as the
        manifest vouches for the tree in the workspace) -> journal."""
        if not self.bundle_jobs:
            return
        assert self.journal is not None and self.remote is not None and self.pool is not None
        for name, job in list(self.bundle_jobs.items()):
            if job.future is None or not job.future.done():
                continue
            del self.bundle_jobs[name]
            try:
                result = job.future.result()
            except Stopped:
                raise
            except (OpFailed, GitError, OSError) as exc:
                delay = self._backoff(2, exc.failure.retry_after if isinstance(exc, OpFailed) else 0.0)
                self.journal.bundle_failed(name, str(exc), time.time() + delay)
                log.warning("[%s] bundle not uploaded: %s; retrying in %.0f s", name, exc, delay)
                continue
            self._status_dirty = True
            if job.manifest_phase:
                refs = job.refs if job.uploaded else None
                self.journal.bundle_done(name, refs, job.synced, job.note or None)
                log.info("[%s] %s", name, f"bundle {job.note}" if job.note else "bundle uploaded")
                continue
            job.uploaded, job.note = result if isinstance(result, tuple) else (False, "")
            record = self.journal.ensure(name)
            if record.synced != job.synced or self._needs_sync(record, self.journal.unfinished()):
                # Commits arrived meanwhile: the next quiet spell makes a fresh bundle and manifest.
                self.journal.schedule_bundle(name, time.time() + self.options.bundle_idle)
                continue
            manifest = {
                "version": 1,
                "repo": name,
                "commit": job.synced,  # the tree the workspace folder holds
                "head_ref": job.head_ref,
                "bundle": job.uploaded,
                "remotes": job.remotes,
                "written_at": time.time(),
            }
            data = json.dumps(manifest, indent=2).encode() + b"\n"
            # Journal first: killed after the upload lands, we must still know to withdraw it later.
            self.journal.set_manifest(name, job.synced)
            job.manifest_phase = True
            job.future = self.pool.submit(self.remote.upload, manifest_path(self.remote, name), data)
            self.bundle_jobs[name] = job

    # -- status -----------------------------------------------------------------------------------

    def _pending(self, name: str, head: str | None, synced: str | None) -> int:
        if head is None or head == synced:
            return 0
        cached = self._counts.get(name)
        if cached and cached[:2] == (head, synced):
            return cached[2]
        path = self.local.get(name)
        if path is None:
            return 0
        git = Git(path, self.env)
        base = synced if synced and git.has_commit(synced) else None
        count = max(1, git.count(base, head))
        self._counts[name] = (head, synced, count)
        return count

    def build_status(self) -> SyncStatus:
        status = SyncStatus(
            pid=os.getpid(), remote_root=self.remote.root if self.remote else "", restore=self.restore
        )
        if self.remote is None and not has_owner_token(self.settings):
            status.state = OverallState.NO_WORKSPACE
            status.reason = self.overall_error
            return status
        records = {r.name: r for r in self.journal.all()} if self.journal else {}
        for name in sorted(set(records) | set(self.local) | set(self.restore_errors)):
            record = records.get(name) or RepoRecord(name)
            head = self.heads.get(name)
            repo = RepoStatus(
                name=name,
                state=RepoState.SYNCED,
                last_synced_commit=record.synced,
                last_synced_at=record.synced_at,
                head=head,
                last_error=record.last_error,
                attempts=record.attempts,
                skipped_large=record.skipped_large,
                skipped=[{"path": p, "reason": r} for p, r in sorted(record.rejected.items())],
                remote_path=self.remote.path(name) if self.remote else "",
                note=record.note,
            )
            hook_result = self.hooks.get(name)
            if hook_result is not None and not hook_result.installed:
                repo.note = "; ".join(n for n in (repo.note, hook_result.note) if n)
            if record.bundle_error:
                repo.note = "; ".join(n for n in (repo.note, f"bundle: {record.bundle_error}") if n)
            if name in self.restore_errors:
                repo.state, repo.last_error = RepoState.ERROR, self.restore_errors[name]
            elif name not in self.local:
                repo.state = RepoState.REMOVED
                repo.note = "removed locally; the workspace copy is kept"
            elif name in self.git_errors:
                repo.state, repo.last_error = RepoState.ERROR, self.git_errors[name]
            elif head is None:
                repo.state = RepoState.EMPTY
            else:
                repo.pending = self._pending(name, head, record.synced)
                if self.syncing == name:
                    repo.state = RepoState.SYNCING
                elif record.attempts:
                    repo.state = RepoState.ERROR
                    repo.next_retry_at = record.next_try
                elif repo.pending:
                    repo.state = RepoState.PENDING
            status.repos.append(repo)
        states = {r.state for r in status.repos}
        if self.overall_error:
            status.state, status.reason = OverallState.ERROR, self.overall_error
        elif RepoState.ERROR in states:
            status.state = OverallState.ERROR
        elif states & {RepoState.SYNCING, RepoState.PENDING}:
            status.state = OverallState.SYNCING
        return status

    def _write_status(self, force: bool = False) -> None:
        now = time.monotonic()
        due = self._status_dirty and now - self._status_written >= 0.25
        if not (force or due or now - self._status_written >= self.options.heartbeat):
            return
        try:
            write_status(self.status_file, self.build_status())
        except (OSError, GitError) as exc:
            self._warn_once("status", "cannot write %s: %s", self.status_file, exc)
            return
        self._status_dirty = False
        self._status_written = now


def _pack_kib(git: Git) -> int:
    """Object storage of the repo in KiB (`git count-objects`): a cheap upper bound of its bundle."""
    total = 0
    for line in git.run("count-objects", "-v", check=False).decode().splitlines():
        key, _, value = line.partition(":")
        if key in ("size", "size-pack") and value.strip().isdigit():
            total += int(value)
    return total
