"""Finding the repositories in ~/projects and their commits: the post-commit hook's spool, a full scan
(every `scan_interval`, and soon after a folder appears or goes), and each repository's HEAD.

Runs on the coordinating thread, the only one that writes the journal: here, each repo's `target`
(the newest HEAD seen, i.e. the pending work) and `removed_at`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from services import state
from services.config import Settings
from services.sync import hook
from services.sync.failures import OnceLog
from services.sync.gitrepo import Git, GitError, find_repos, is_utf8
from services.sync.journal import Journal, RepoRecord
from services.sync.options import SyncOptions

log = logging.getLogger("sync")
# A hook killed between writing its event and renaming it leaves a temp file; this old, it is litter.
STALE_EVENT_SECONDS = 60
# A folder just appeared: look again this soon (a `git clone` needs a moment to make .git).
NEW_FOLDER_LOOK_SECONDS = 0.3


class Discovery:
    """What ~/projects holds: the repositories (`local`), their HEADs, and why one cannot be read."""

    def __init__(
        self,
        settings: Settings,
        options: SyncOptions,
        journal: Journal,
        spool: Path,
        env: dict[str, str],
        warnings: OnceLog,
        changed: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.options = options
        self.journal = journal
        self.spool = spool
        self.env = env
        self.warnings = warnings
        self.changed = changed  # something the status shows changed: write it soon
        self.local: dict[str, Path] = {}
        self.heads: dict[str, str | None] = {}
        self.git_errors: dict[str, str] = {}
        self.hooks: dict[str, hook.HookResult] = {}
        self._counts: dict[str, tuple[str | None, str | None, int]] = {}
        self._next_scan = 0.0
        self._projects_mtime: float | None = None

    def drain_spool(self) -> tuple[set[str], bool]:
        """(repos the hook says have a new commit, whether to rescan everything): one event per commit."""
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
                try:
                    if time.time() - entry.stat().st_mtime > STALE_EVENT_SECONDS:
                        Path(entry.path).unlink()
                except OSError:
                    pass
                continue
            try:
                with Path(entry.path).open("rb") as f:
                    raw = f.read()
                Path(entry.path).unlink()
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

    def catch_up(self, names: set[str], rescan: bool) -> None:
        """Read the HEADs of `names`, or scan everything when asked, when due, or when the folder list
        of ~/projects changed."""
        now = time.monotonic()
        try:
            mtime: float | None = self.settings.projects_dir.stat().st_mtime
        except OSError:
            mtime = None
        if mtime != self._projects_mtime:
            self._projects_mtime = mtime
            self._next_scan = min(self._next_scan, now + NEW_FOLDER_LOOK_SECONDS)
        if rescan or now >= self._next_scan:
            self.scan()
        else:
            for name in names:
                self.refresh(name)

    def scan(self) -> None:
        """Every repository directly under ~/projects: hook installed, HEAD read; gone ones marked."""
        self._next_scan = time.monotonic() + self.options.scan_interval
        found = {}
        for name, path in find_repos(self.settings.projects_dir).items():
            if not is_utf8(name):
                self.warnings.warn(f"bad-name:{name}", "skipping %r: its name is not valid UTF-8", name)
                continue
            found[name] = path
        for name in set(self.local) - set(found):
            self.local.pop(name, None)
            self.heads.pop(name, None)
        for name, path in found.items():
            self.local[name] = path
            self._install_hook(name, path)
            self.refresh(name)
        for record in self.journal.all():
            if record.name not in found and record.removed_at is None:
                self.journal.set_removed(record.name, time.time())
                log.info("[%s] removed locally; the workspace copy is kept", record.name)
                self.changed()

    def _install_hook(self, name: str, path: Path) -> None:
        try:
            result = hook.install(Git(path, self.env), self.spool)
        except (GitError, OSError) as exc:
            result = hook.HookResult(False, None, f"hook not installed: {exc}")
        previous = self.hooks.get(name)
        self.hooks[name] = result
        if previous != result and (result.note or not result.installed):
            log.info("[%s] %s", name, result.note or "hook not installed")

    def refresh(self, name: str) -> None:
        """Read one repository's HEAD; a new one becomes the journal's target (the pending work)."""
        path = self.local.get(name)
        if path is None:
            return
        try:
            head = Git(path, self.env).head()
        except GitError as exc:
            self.git_errors[name] = str(exc)
            self.changed()
            return
        self.git_errors.pop(name, None)
        record = self.journal.ensure(name)
        if record.removed_at is not None:
            self.journal.set_removed(name, None)
        if head != record.target:
            self.journal.set_target(name, head)
        if self.heads.get(name, "unset") != head:
            self.heads[name] = head
            self.changed()

    def saw_head(self, name: str, head: str) -> None:
        """The mirror read HEAD as it started a sync: the status shows that one."""
        self.heads[name] = head

    def unreadable(self, name: str, exc: GitError) -> None:
        self.git_errors[name] = str(exc)

    def needs_sync(self, record: RepoRecord, unfinished: set[str]) -> bool:
        """HEAD is not what the workspace holds, or a sync of it was interrupted."""
        head = self.heads.get(record.name)
        return head is not None and (head != record.synced or record.name in unfinished)

    def pending_counts(self, records: Mapping[str, RepoRecord], failed: Collection[str]) -> dict[str, int]:
        """Commits each readable repository holds that the workspace does not (`failed`: not counted)."""
        counts: dict[str, int] = {}
        for name in self.local:
            head = self.heads.get(name)
            if name in failed or name in self.git_errors or head is None:
                continue
            record = records.get(name)
            counts[name] = self._pending(name, head, record.synced if record else None)
        return counts

    def _pending(self, name: str, head: str, synced: str | None) -> int:
        if head == synced:
            return 0
        cached = self._counts.get(name)
        if cached and cached[:2] == (head, synced):
            return cached[2]
        git = Git(self.local[name], self.env)
        base = synced if synced and git.has_commit(synced) else None
        count = max(1, git.count(base, head))
        self._counts[name] = (head, synced, count)
        return count
