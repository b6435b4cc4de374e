"""Mirroring one repository's HEAD into the workspace: which repo is due, the plan (what to upload and
delete), and running its workspace calls on the pool, each journaled as it lands.

One repo at a time, always to its newest HEAD, so quick commits coalesce into one sync. A failed
attempt is retried with backoff (the journal holds when); what landed before it is not redone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass

from services.sync.connect import Connected
from services.sync.discovery import Discovery
from services.sync.failures import Failure, Kind, OnceLog, OpFailed, Stopped
from services.sync.gitrepo import BlobReader, Git, GitError
from services.sync.journal import RepoRecord
from services.sync.options import SyncOptions
from services.sync.plan import Plan, desired, full, incremental
from services.sync.report import StatusFile
from services.sync.restore import manifest_path

log = logging.getLogger("sync")


def classify_error(exc: BaseException) -> Failure:
    from services.sync.remote import classify  # loaded by then: the call that raised came through it

    return classify(exc)


class AttemptFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class Tally:
    """Figures for the log, the tests and the bench."""

    syncs: int = 0
    uploads: int = 0
    deletes: int = 0


@dataclass
class _Op:
    kind: str  # upload | delete | rmtree | mkdirs
    path: str  # relative to the repo folder
    blob: str = ""


def _short(sha: str | None) -> str:
    return sha[:7] if sha else "-"


@dataclass
class _Attempt:
    """One sync attempt's ops as they settle: the first failure, the longest Retry-After, and
    whether to stop submitting (a token refused, or `limit` failures in a row)."""

    limit: int
    first: Failure | None = None
    retry_after: float = 0.0
    streak: int = 0
    exhausted: bool = False

    def settle(self, name: str, op: _Op, future: Future[None], rejected: dict[str, str]) -> bool:
        """True when the op landed; a file the workspace refuses for good goes to `rejected`."""
        try:
            future.result()
        except Stopped:
            raise
        except OpFailed as exc:
            if exc.failure.kind is Kind.PERMANENT and op.kind == "upload":
                rejected[op.path] = exc.failure.message
                log.warning("[%s] %s refused by the workspace: %s", name, op.path, exc.failure.message)
                return False
            self.streak += 1
            self.first = self.first or exc.failure
            self.retry_after = max(self.retry_after, exc.failure.retry_after)
            if exc.failure.kind is Kind.AUTH or self.streak >= self.limit:
                self.exhausted = True  # no point trying the rest now
            return False
        except Exception as exc:
            self.first = self.first or classify_error(exc)
            return False
        self.streak = 0
        return True


class Mirror:
    def __init__(
        self,
        link: Connected,
        options: SyncOptions,
        stop: threading.Event,
        discovery: Discovery,
        status: StatusFile,
        warnings: OnceLog,
        tally: Tally,
        between: Callable[[], None],
    ) -> None:
        self.link = link
        self.options = options
        self.stop = stop
        self.discovery = discovery
        self.status = status
        self.warnings = warnings
        self.tally = tally
        self.between = between  # keeps up with commits and the status while calls are in flight
        self.syncing: str | None = None

    def next_due(self, held: set[str]) -> str | None:
        """The repo to sync next (earliest retry first); `held`: repos that must not change now."""
        now = time.time()
        journal, discovery = self.link.journal, self.discovery
        unfinished = journal.unfinished()
        due = [
            r
            for r in journal.all()
            if r.name in discovery.local
            and r.name not in discovery.git_errors
            and r.name not in held
            and r.next_try <= now
            and discovery.needs_sync(r, unfinished)
        ]
        return min(due, key=lambda r: (r.next_try, r.name)).name if due else None

    def sync(self, name: str) -> None:
        """One attempt to bring the workspace to `name`'s HEAD; a failure is journaled with its retry."""
        journal = self.link.journal
        record = journal.ensure(name)
        git = Git(self.discovery.local[name], self.discovery.env)
        try:
            head = git.head()
        except GitError as exc:
            self.discovery.unreadable(name, exc)
            return
        if head is None:
            return
        self.discovery.saw_head(name, head)
        self.syncing = name
        self.status.write(force=True)
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
            delay = self.options.backoff(record.attempts + 1, failure.retry_after)
            attempts = journal.fail(name, failure.message, time.time() + delay)
            log.warning(
                "[%s] sync of %s failed (attempt %d): %s; retrying in %.1f s",
                name,
                _short(head),
                attempts,
                failure.message,
                delay,
            )
        else:
            self.tally.syncs += 1
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
            self.status.mark()
            self.status.write(force=True)

    def _sync_to(self, name: str, git: Git, record: RepoRecord, head: str) -> tuple[int, int]:
        journal, remote = self.link.journal, self.link.remote
        want = desired(git.tree(head), self.options.max_file_bytes)
        for path in want.skipped_large:
            self.warnings.warn(f"large:{name}:{path}", "[%s] %s is over 10 MB: not uploaded", name, path)
        if record.manifest is not None and record.manifest != head:
            # The manifest vouches for the tree now in the workspace; withdraw it before that changes.
            remote.delete(manifest_path(remote, name))
            journal.set_manifest(name, None)
        progress = journal.progress(name)
        if progress and record.attempts == 0:
            log.info("[%s] resuming an interrupted sync (%d changes already done)", name, len(progress))
        base = record.synced if record.synced and git.has_commit(record.synced) else None
        if base is not None:
            plan = incremental(git.tree(base, sizes=False), set(record.skipped_large), want, progress)
        else:
            walked = remote.walk(remote.path(name), self.link.pool)
            if walked is None:
                remote.mkdirs(remote.path(name))
                walked = ({}, set())
            plan = full(set(walked[0]), walked[1], want, progress)
        # Refusals stand while the file is unchanged; a changed one is tried again below.
        retried = {p for p, _ in plan.uploads}
        rejected = {p: why for p, why in record.rejected.items() if p in want.files and p not in retried}
        rejected.update(want.rejected)
        uploaded, deleted = self._execute(name, git, plan, rejected)
        journal.succeed(name, head, want.skipped_large, rejected, time.time() + self.options.bundle_idle)
        return uploaded, deleted

    def _execute(self, name: str, git: Git, plan: Plan, rejected: dict[str, str]) -> tuple[int, int]:
        remote = self.link.remote
        before_up, before_del = self.tally.uploads, self.tally.deletes
        self._run(name, [_Op("delete", p) for p in plan.deletes], rejected)
        for folder in plan.rmdirs:  # deepest first: a parent is only empty once its children are gone
            remote.rmdir(remote.path(name, folder))
        self._run(name, [_Op("rmtree", d) for d in plan.rmtrees], rejected)
        self._run(name, [_Op("mkdirs", d) for d in plan.mkdirs], rejected)
        with git.blobs() as blobs:
            self._run(name, [_Op("upload", p, b) for p, b in plan.uploads], rejected, blobs)
        return self.tally.uploads - before_up, self.tally.deletes - before_del

    def _call(self, name: str, op: _Op, blobs: BlobReader | None) -> Callable[[], None]:
        remote = self.link.remote
        target = remote.path(name, op.path)
        if op.kind == "upload":
            if blobs is None:
                raise ValueError(f"an upload of {op.path} without a blob reader")
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
        pending = iter(ops)
        in_flight: dict[Future[None], _Op] = {}
        attempt = _Attempt(limit=2 * self.options.concurrency)
        while True:
            while not attempt.exhausted and len(in_flight) < attempt.limit:
                op = next(pending, None)
                if op is None:
                    attempt.exhausted = True
                    break
                in_flight[self.link.pool.submit(self._call(name, op, blobs))] = op
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=self.options.poll_interval, return_when=FIRST_COMPLETED)
            if self.stop.is_set():
                raise Stopped()
            for future in done:
                op = in_flight.pop(future)
                if attempt.settle(name, op, future, rejected):
                    self._landed(name, op)
            self.between()
        if attempt.first is not None:
            raise AttemptFailed(Failure(attempt.first.kind, attempt.first.message, attempt.retry_after))

    def _landed(self, name: str, op: _Op) -> None:
        if op.kind == "upload":
            self.link.journal.record(name, op.path, op.blob)
            self.tally.uploads += 1
        elif op.kind == "delete":
            self.link.journal.record(name, op.path, "")
            self.tally.deletes += 1
