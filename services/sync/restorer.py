"""The start-up restore: every project the workspace holds and ~/projects lacks comes back, a few at
a time, with its progress in the status file and the shells' notice, and each outcome said.

Runs on the watcher's coordinating thread (the only one that writes the journal); the repositories
are built and put in place on a small pool of their own, since the watcher's pool does their
downloads and a task waiting on its own pool could wait forever.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from services.config import Settings
from services.sync import notice
from services.sync.failures import OpFailed, Stopped
from services.sync.gitrepo import GitError
from services.sync.journal import Journal
from services.sync.placement import Placed
from services.sync.restore import RESTORING, Found, RestoreContext, Restored, candidates, restore_repo
from services.sync.status import Outcome, RestoreItem, RestorePhase, RestoreStatus

log = logging.getLogger("sync")

HANDLED = "restore:"  # journal meta key prefix: this name's restore is done for this container
WORKERS = 3  # repositories restored at once: each is a download, then git work on one core


def to_restore(journal: Journal, listing: list[tuple[str, bool, int]], known: set[str]) -> dict[str, Found]:
    """What the workspace holds that this container has not got (or handled) yet. `known`: the names
    the journal held when the watcher started, i.e. repositories mirrored from here before (still
    here: the user's, whose own sync goes on; gone: deleted here, the user's choice)."""
    todo: dict[str, Found] = {}
    for name, found in sorted(candidates(listing).items()):
        if name in known or journal.meta(HANDLED + name) is not None:
            continue
        todo[name] = found
    return todo


def restore_missing(
    settings: Settings,
    ctx: RestoreContext,
    journal: Journal,
    listing: list[tuple[str, bool, int]],
    known: set[str],
    progress: RestoreStatus,
    on_progress: Callable[[], None],
    stop: threading.Event,
    poll: float,
) -> dict[str, str]:
    """Restore what `listing` (the workspace folder) has that ~/projects lacks, filling in `progress`
    (calling `on_progress` after each change); returns a failure message per name."""
    for leftover in settings.projects_dir.glob(f"{RESTORING}*"):
        shutil.rmtree(leftover, ignore_errors=True)  # a restore killed half-way: start it over
    todo = to_restore(journal, listing, known)
    progress.total, progress.done = len(todo), 0
    progress.items = [RestoreItem(name) for name in todo]
    errors: dict[str, str] = {}
    if todo:
        progress.phase = RestorePhase.RESTORING
        notice.write_notice(settings, notice.restoring_text(len(todo), ctx.remote.root))
        log.info("restoring %d projects from %s: %s", len(todo), ctx.remote.root, ", ".join(todo))
        on_progress()
        _run(settings, ctx, journal, todo, progress, on_progress, stop, poll, errors)
    progress.phase = RestorePhase.DONE
    progress.finished_at = time.time()
    notice.clear_notice(settings)
    if todo:
        took = progress.finished_at - (progress.started_at or progress.finished_at)
        log.info(
            "restore done in %.1f s: %s", took, "; ".join(f"{i.name}: {i.outcome}" for i in progress.items)
        )
    on_progress()
    return errors


def _run(
    settings: Settings,
    ctx: RestoreContext,
    journal: Journal,
    todo: dict[str, Found],
    progress: RestoreStatus,
    on_progress: Callable[[], None],
    stop: threading.Event,
    poll: float,
    errors: dict[str, str],
) -> None:
    items = {item.name: item for item in progress.items}
    started = time.monotonic()
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="restore")
    try:
        jobs: dict[Future[tuple[Restored, Placed] | None], tuple[str, RestoreContext]] = {}
        for name, found in todo.items():
            own = replace(ctx, log=[])  # each repo's lines stay together in the log
            jobs[pool.submit(restore_repo, own, name, found)] = (name, own)
        while jobs:
            done, _ = wait(jobs, timeout=poll, return_when=FIRST_COMPLETED)
            if stop.is_set():
                raise Stopped()
            for future in done:
                name, own = jobs.pop(future)
                item = items[name]
                try:
                    outcome = future.result()
                except Stopped:
                    raise
                except (OpFailed, GitError, OSError) as exc:
                    item.outcome, item.message = Outcome.FAILED, f"restore failed: {exc}"
                    errors[name] = item.message
                    log.error("[%s] restore failed: %s (tried again at the next start)", name, exc)
                else:
                    for line in own.log:
                        log.info("[%s] %s", name, line)
                    _record(settings, journal, name, item, outcome, time.monotonic() - started)
                progress.done += 1
                on_progress()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _record(
    settings: Settings,
    journal: Journal,
    name: str,
    item: RestoreItem,
    outcome: tuple[Restored, Placed] | None,
    took: float,
) -> None:
    """Journal what became of `name` (on the coordinating thread) and say it in the log."""
    if outcome is None:
        item.outcome, item.message = Outcome.RESTORED, "nothing to restore (no files, no bundle)"
        journal.set_meta(HANDLED + name, item.outcome.value)
        return
    result, placed = outcome
    item.outcome, item.message = placed.outcome, placed.message
    item.path = (
        str(placed.path.relative_to(settings.home)) if placed.path.is_relative_to(settings.home) else ""
    )
    due = time.time() if result.refresh_bundle else None
    if placed.outcome in (Outcome.RESTORED, Outcome.INTO_EMPTY):
        note = f"restored {result.how}" + (
            "; into the empty folder there" if placed.outcome is Outcome.INTO_EMPTY else ""
        )
        journal.restored(name, result.synced, result.refs, result.manifest, note, due)
    elif placed.outcome is Outcome.BESIDE:
        # The workspace holds nothing under the new name yet: it is mirrored in full, as a new repo.
        journal.restored(placed.path.name, None, None, None, f"restored {result.how}: {placed.message}")
    else:
        # Their clone now has the commit the workspace folder holds; its refs differ from the bundle's.
        journal.restored(name, result.synced, None, result.manifest, placed.message, time.time())
    journal.set_meta(HANDLED + name, placed.outcome.value)
    log.info("[%s] restored %s in %.1f s: %s", name, result.how, took, placed.message)
