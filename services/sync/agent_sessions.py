"""The agents' conversations, kept across redeploys: copied into a git repository the sync mirrors.

The container's disk is wiped on every restart; `~/projects` comes back from the workspace, the
agents' conversation stores (agents.yaml `sessions:`) did not. This copies them into
`~/projects/.agent-sessions`, a repository the sync mirrors, bundles and restores like any project
(its journal, backoff and status, no second mechanism), and after the start-up restore copies them
back into HOME, so `claude --continue`, `gemini --resume`, `codex resume` and `opencode --continue`
find the earlier turns.

- Only files matching the agents' globs travel, both ways: never credentials, caches or config.
- A SQLite store is copied through SQLite's backup API: consistent even while the agent writes.
- Nothing is deleted from the copy (a session removed here stays in the workspace), and a file
  already in HOME is never overwritten by the restore: the running container's copy is newer.
- Files over the sync's per-file limit are left out (said once in the log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.sync.failures import OnceLog
from services.sync.gitrepo import Git, GitError

log = logging.getLogger("sync")

REPO_NAME = ".agent-sessions"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
COMMITTER = ("-c", "user.name=Coding Agents", "-c", "user.email=agent-sessions@coding-agents.invalid")
README = """# Agent conversations

Copied here by the Coding Agents app from each agent's own store in HOME (agents.yaml `sessions:`),
mirrored to the workspace with your projects, and copied back after a redeploy so an agent can
resume a conversation. Edit nothing here: the app overwrites it.
"""


@dataclass
class Copied:
    files: int = 0  # copied into the repository this round
    committed: bool = False
    skipped: list[str] = field(default_factory=list)  # over the size limit


def patterns_from_registry() -> tuple[str, ...]:
    """Every agent's `sessions:` globs; none when agents.yaml does not load (setup says why)."""
    from services.setup import registry  # light, but only the sync's start needs it

    try:
        loaded = registry.load(registry.registry_path(os.environ))
    except registry.RegistryError as exc:
        log.warning("agent conversations are not kept: %s", exc)
        return ()
    return tuple(glob for agent in loaded.agents for glob in agent.sessions)


def matching(root: Path, patterns: Iterable[str]) -> list[Path]:
    """Regular files under `root` matching any glob (relative), without following symlinks out."""
    found: set[Path] = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            if path.is_file() and not path.is_symlink():
                found.add(path)
    return sorted(found)


def same_file(a: Path, b: Path) -> bool:
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    return sa.st_size == sb.st_size and int(sa.st_mtime) == int(sb.st_mtime)


def copy_sqlite(source: Path, dest: Path) -> bool:
    """A consistent copy of a live SQLite database; False when its content did not change."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".copy-", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # Read-only URI: the copy never creates or changes anything of the agent's.
        reading = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True, timeout=5)
        with contextlib.closing(reading) as src, contextlib.closing(sqlite3.connect(tmp)) as out:
            src.backup(out)
            # One self-contained file: a WAL-mode copy would grow -wal/-shm files beside it when read.
            out.execute("PRAGMA journal_mode=DELETE")
        if dest.exists() and dest.read_bytes() == tmp.read_bytes():
            return False
        tmp.replace(dest)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def place_new(source: Path, dest: Path) -> bool:
    """Copy `source` to `dest` unless `dest` exists, whole or not at all: an agent started meanwhile
    never reads a half-written conversation, nor has its own file replaced. False when it existed."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp's 0600 from the first byte: conversations can hold anything the user pasted.
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".restore-", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        mtime = source.stat().st_mtime
        os.utime(tmp, (mtime, mtime))  # as copy2 did: the next snapshot sees the same file, no commit
        os.link(tmp, dest)  # unlike a rename, fails rather than replace a file made meanwhile
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


class AgentSessions:
    """Copies between the agents' stores in HOME and the `.agent-sessions` repository."""

    def __init__(
        self,
        home: Path,
        projects: Path,
        patterns: tuple[str, ...],
        env: Mapping[str, str],
        max_file_bytes: int,
        warnings: OnceLog,
    ) -> None:
        self.home = home
        self.repo = projects / REPO_NAME
        self.patterns = patterns
        self.env = env
        self.max_file_bytes = max_file_bytes
        self.warnings = warnings

    def restore_home(self) -> int:
        """After the start-up restore: files of the repository missing in HOME go back; none of
        HOME's is replaced. The count of files restored."""
        if not self.patterns or not self.repo.is_dir():
            return 0
        restored = 0
        for source in matching(self.repo, self.patterns):
            dest = self.home / source.relative_to(self.repo)
            if not dest.exists() and place_new(source, dest):
                restored += 1
        if restored:
            log.info("restored %d agent conversation file(s) into %s", restored, self.home)
        return restored

    def snapshot(self) -> Copied:
        """Copy what changed in HOME into the repository and commit it (the sync's hook then sees
        the commit like any other)."""
        copied = Copied()
        if not self.patterns:
            return copied
        sources = matching(self.home, self.patterns)
        if not sources and not self.repo.exists():
            return copied  # no agent has talked yet: no empty repository in ~/projects
        git = self._repository()
        for source in sources:
            rel = source.relative_to(self.home)
            dest = self.repo / rel
            try:
                size = source.stat().st_size
                if size > self.max_file_bytes:
                    copied.skipped.append(str(rel))
                    self.warnings.warn(
                        f"session-too-big:{rel}",
                        f"~/{rel} ({size} bytes) is over the sync's {self.max_file_bytes}-byte file limit: "
                        "that conversation is not kept across redeploys",
                    )
                    continue
                if source.suffix in SQLITE_SUFFIXES:
                    changed = copy_sqlite(source, dest)
                elif same_file(source, dest):
                    changed = False
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, dest)
                    changed = True
            except (OSError, sqlite3.Error) as exc:  # written or removed by the agent meanwhile
                self.warnings.warn(f"session-copy:{rel}", f"cannot copy ~/{rel} yet: {exc}")
                continue
            copied.files += int(changed)
        if git.run("status", "--porcelain", "--untracked-files=all"):
            git.run("add", "-A")
            git.run(*COMMITTER, "commit", "-q", "--no-verify", "-m", f"agent conversations, {time.ctime()}")
            copied.committed = True
        return copied

    def _repository(self) -> Git:
        git = Git(self.repo, self.env)
        if not (self.repo / ".git").exists():
            self.repo.mkdir(parents=True, exist_ok=True)
            try:
                git.run("init", "-q", "-b", "main")
            except GitError:
                git.run("init", "-q")
            (self.repo / "README.md").write_text(README)
            (self.repo / ".gitignore").write_text("*-wal\n*-shm\n*-journal\n.copy-*\n")
        return git
