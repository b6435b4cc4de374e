"""Each repository's git bundle and manifest in the workspace, so a fresh container restores it with
its history (services.sync.restore reads them back).

Once a repo has been quiet for `bundle_idle`, its bundle is made and uploaded on the pool (a big repo's
bundle never delays a commit), then the manifest naming the commit the workspace folder holds. The
journal is written first at each step, so a watcher killed mid-way knows what the workspace may hold.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from services.sync.connect import Connected
from services.sync.discovery import Discovery
from services.sync.failures import OpFailed, Stopped
from services.sync.gitrepo import Git, GitError
from services.sync.options import SyncOptions
from services.sync.restore import bundle_path, manifest_path

log = logging.getLogger("sync")
MANIFEST_VERSION = 1
TOO_BIG = "over 10 MB: not uploaded, a restore gets the files without history"


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


class Bundles:
    def __init__(
        self,
        link: Connected,
        options: SyncOptions,
        discovery: Discovery,
        tmp: Path,
        changed: Callable[[], None],
    ) -> None:
        self.link = link
        self.options = options
        self.discovery = discovery
        self.tmp = tmp
        self.changed = changed  # something the status shows changed: write it soon
        self.jobs: dict[str, _BundleJob] = {}

    def manifest_in_flight(self) -> set[str]:
        """Repos whose manifest is on the wire: the tree it vouches for must not change meanwhile."""
        return {name for name, job in self.jobs.items() if job.manifest_phase}

    def due(self) -> str | None:
        """A synced repo, quiet long enough, whose bundle is due for a refresh."""
        now = time.time()
        journal = self.link.journal
        unfinished = journal.unfinished()
        for r in journal.all():
            if (
                r.bundle_due is not None
                and r.bundle_due <= now
                and r.name not in self.jobs
                and r.name in self.discovery.local
                and not self.discovery.needs_sync(r, unfinished)
                and r.synced is not None
            ):
                return r.name
        return None

    def start(self, name: str) -> None:
        """Refresh the repo's bundle on the pool, so a big repo's bundle never delays a commit."""
        journal, pool = self.link.journal, self.link.pool
        record = journal.ensure(name)
        git = Git(self.discovery.local[name], self.discovery.env)
        try:
            refs = git.refs_digest()
            job = _BundleJob(name, record.synced, refs, git.symbolic_head(), git.remotes())
        except GitError as exc:
            journal.bundle_failed(name, str(exc), time.time() + self.options.backoff(2, 0.0))
            return
        if refs == record.bundle_refs:
            job.future = pool.submit(lambda: (True, ""))  # the workspace has this very bundle
        else:
            job.future = pool.submit(self._make_bundle, name, git)
        self.jobs[name] = job

    def _make_bundle(self, name: str, git: Git) -> tuple[bool, str]:
        """(uploaded, note): create the bundle and upload it, or remove a stale one if it is too big."""
        remote = self.link.remote
        limit = self.options.max_file_bytes
        if _pack_kib(git) * 1024 > 2 * limit:
            remote.delete(bundle_path(remote, name))
            return False, TOO_BIG
        out = self.tmp / f"{uuid.uuid4().hex}.bundle"
        try:
            if not git.bundle(out):
                return False, ""
            if out.stat().st_size > limit:
                remote.delete(bundle_path(remote, name))
                return False, TOO_BIG
            remote.upload(bundle_path(remote, name), out.read_bytes())
        finally:
            out.unlink(missing_ok=True)
        return True, ""

    def poll(self) -> None:
        """Move finished jobs on: bundle uploaded -> manifest (only while the repo is idle, as the
        manifest vouches for the tree in the workspace) -> journal."""
        journal = self.link.journal
        for name, job in list(self.jobs.items()):
            if job.future is None or not job.future.done():
                continue
            del self.jobs[name]
            try:
                result = job.future.result()
            except Stopped:
                raise
            except (OpFailed, GitError, OSError) as exc:
                delay = self.options.backoff(2, exc.failure.retry_after if isinstance(exc, OpFailed) else 0.0)
                journal.bundle_failed(name, str(exc), time.time() + delay)
                log.warning("[%s] bundle not uploaded: %s; retrying in %.0f s", name, exc, delay)
                continue
            self.changed()
            if job.manifest_phase:
                refs = job.refs if job.uploaded else None
                journal.bundle_done(name, refs, job.synced, job.note or None)
                log.info("[%s] %s", name, f"bundle {job.note}" if job.note else "bundle uploaded")
                continue
            job.uploaded, job.note = result if isinstance(result, tuple) else (False, "")
            record = journal.ensure(name)
            if record.synced != job.synced or self.discovery.needs_sync(record, journal.unfinished()):
                # Commits arrived meanwhile: the next quiet spell makes a fresh bundle and manifest.
                journal.schedule_bundle(name, time.time() + self.options.bundle_idle)
                continue
            self._send_manifest(job)

    def _send_manifest(self, job: _BundleJob) -> None:
        manifest = {
            "version": MANIFEST_VERSION,
            "repo": job.name,
            "commit": job.synced,  # the tree the workspace folder holds
            "head_ref": job.head_ref,
            "bundle": job.uploaded,
            "remotes": job.remotes,
            "written_at": time.time(),
        }
        data = json.dumps(manifest, indent=2).encode() + b"\n"
        # Journal first: killed after the upload lands, we must still know to withdraw it later.
        self.link.journal.set_manifest(job.name, job.synced)
        job.manifest_phase = True
        remote = self.link.remote
        job.future = self.link.pool.submit(remote.upload, manifest_path(remote, job.name), data)
        self.jobs[job.name] = job


def _pack_kib(git: Git) -> int:
    """Object storage of the repo in KiB (`git count-objects`): a cheap upper bound of its bundle."""
    total = 0
    for line in git.run("count-objects", "-v", check=False).decode().splitlines():
        key, _, value = line.partition(":")
        if key in ("size", "size-pack") and value.strip().isdigit():
            total += int(value)
    return total
