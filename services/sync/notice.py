"""The restore notice every new shell prints while projects are being restored.

A fresh container's first prompt comes ~1 s after start; restoring projects needs the workspace
(importing databricks-sdk alone takes ~1.5 CPU-seconds), so it ends seconds later. Rather than hold
the prompt back, a marker file says so: tmux's default-command (services/tmuxd/tmux.conf) prints it
before starting the shell. services.tmuxd writes it before any shell can exist; the sync watcher
rewrites it as the restore goes on and removes it once every project is back. Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from services import state
from services.config import Settings
from services.credentials.store import has_owner_token


def notice_path(settings: Settings) -> Path:
    return settings.files.sync_notice


def fresh_container(settings: Settings) -> bool:
    """A workspace is configured and the sync watcher has never run on this disk (an Apps restart
    or redeploy wipes it): projects may be about to come back."""
    return has_owner_token(settings) and not settings.files.sync_journal.exists()


def checking_text() -> str:
    return "checking the workspace for projects to restore into ~/projects…"


def restoring_text(count: int, remote_root: str) -> str:
    what = "1 project" if count == 1 else f"{count} projects"
    return f"restoring {what} from /Workspace{remote_root}… ~/projects fills in a moment"


def write_notice(settings: Settings, text: str) -> None:
    # Yellow, then the way to follow it: the line stands out among a shell's start-up output.
    line = (
        f"\033[33m[coding-agents] {text} (progress: the ⟳ sync badge, or `supervisorctl tail sync`)\033[0m\n"
    )
    path = notice_path(settings)
    with contextlib.suppress(OSError):  # a notice is a courtesy: never stop a start for it
        state.ensure_dir(path.parent)
        state.atomic_write_bytes(path, line.encode(), mode=0o644)


def clear_notice(settings: Settings) -> None:
    with contextlib.suppress(OSError):
        notice_path(settings).unlink(missing_ok=True)


def prepare(settings: Settings) -> None:
    """Called by services.tmuxd before the tmux server (so before any shell) starts."""
    if fresh_container(settings):
        write_notice(settings, checking_text())
