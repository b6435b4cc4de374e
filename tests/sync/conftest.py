"""Fixtures for the sync watcher: real git repos in the stack's ~/projects, the real SDK, the fake
workspace on 127.0.0.1, and the watcher running in-process in a thread (fast timings)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from services.config import Settings
from services.sync.status import read_status
from services.sync.watcher import SyncOptions, Watcher
from tests.conftest import OWNER_EMAIL, OWNER_TOKEN, Stack
from tests.fake_workspace import FakeWorkspace
from tests.helpers import wait_until

REMOTE_ROOT = f"/Users/{OWNER_EMAIL}/projects"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
}
FAST = SyncOptions(
    poll_interval=0.05,
    scan_interval=5.0,
    concurrency=4,
    bundle_idle=0.2,
    http_timeout=5.0,
    backoff_base=0.05,
    backoff_max=0.5,
    op_tries=3,
    op_delay=0.02,
    heartbeat=1.0,
)


def workspace_env(stack: Stack, workspace: FakeWorkspace) -> dict[str, str]:
    """Local mode wired to the fake workspace (what a laptop with a PAT looks like)."""
    return {**stack.env, "DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": OWNER_TOKEN}


@dataclass
class Git:
    env: dict[str, str]

    def __call__(self, repo: Path, *args: str, input: bytes | None = None) -> str:
        result = subprocess.run(
            ["git", *args], cwd=repo, env=self.env, input=input, capture_output=True, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode(errors="surrogateescape")

    def init(self, repo: Path) -> Path:
        repo.mkdir(parents=True, exist_ok=True)
        self(repo, "init", "-q", "-b", "main")
        return repo

    def commit(
        self,
        repo: Path,
        message: str = "change",
        files: dict[str, bytes | str] | None = None,
        delete: tuple[str, ...] = (),
    ) -> str:
        for rel, content in (files or {}).items():
            path = repo / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        for rel in delete:
            (repo / rel).unlink()
        self(repo, "add", "-A")
        self(repo, "commit", "-q", "--allow-empty", "-m", message)
        return self(repo, "rev-parse", "HEAD").strip()

    def tracked(self, repo: Path, limit: int = 10 * 1024 * 1024) -> dict[str, bytes]:
        """What the workspace should hold: HEAD's regular files up to `limit`, by content."""
        out = subprocess.run(
            ["git", "ls-tree", "-r", "-l", "-z", "HEAD"],
            cwd=repo,
            env=self.env,
            capture_output=True,
            check=True,
        ).stdout
        files: dict[str, bytes] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, _, sha, size = meta.split()
            if mode in (b"100644", b"100755") and int(size) <= limit:
                blob = subprocess.run(
                    ["git", "cat-file", "blob", sha.decode()], cwd=repo, env=self.env, capture_output=True
                ).stdout
                files[path.decode()] = blob
        return files


@dataclass
class Rig:
    """One isolated sync setup: stack (HOME, state dir), fake workspace, git, watcher."""

    stack: Stack
    workspace: FakeWorkspace
    git: Git
    options: SyncOptions = FAST
    watcher: Watcher | None = None
    thread: threading.Thread | None = None
    errors: list[BaseException] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(workspace_env(self.stack, self.workspace))

    @property
    def projects(self) -> Path:
        return self.stack.home / "projects"

    @property
    def state(self) -> Path:
        return self.stack.state_dir / "sync"

    def repo(self, name: str, files: dict[str, bytes | str] | None = None) -> Path:
        path = self.git.init(self.projects / name)
        if files is not None:
            self.git.commit(path, "first", files)
        return path

    def start(self, settings: Settings | None = None, **options: object) -> Watcher:
        assert self.thread is None, "stop the running watcher first"
        watcher = Watcher(settings or self.settings, replace(self.options, **options))  # type: ignore[arg-type]

        def run() -> None:
            try:
                watcher.run()
            except BaseException as exc:  # surfaced by stop(): a crashed watcher must fail the test
                self.errors.append(exc)
                raise

        self.watcher = watcher
        self.thread = threading.Thread(target=run, name="sync-watcher", daemon=True)
        self.thread.start()
        return watcher

    def stop(self) -> None:
        if self.watcher is None or self.thread is None:
            return
        self.watcher.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the watcher did not stop"
        self.watcher = None
        self.thread = None
        if self.errors:
            raise self.errors[0]

    def remote(self, name: str) -> dict[str, bytes]:
        prefix = f"{REMOTE_ROOT}/{name}/"
        with self.workspace.lock:
            return {p[len(prefix) :]: d for p, d in self.workspace.files.items() if p.startswith(prefix)}

    def remote_dirs(self, name: str) -> set[str]:
        prefix = f"{REMOTE_ROOT}/{name}/"
        with self.workspace.lock:
            return {d[len(prefix) :] for d in self.workspace.dirs if d.startswith(prefix)}

    def wait_mirrored(self, repo: Path, timeout: float = 15.0) -> None:
        """Until the workspace holds exactly HEAD's tracked files (names and bytes)."""
        want = self.git.tracked(repo)

        def same() -> bool:
            if self.errors:
                raise AssertionError(f"the watcher crashed: {self.errors[0]!r}")
            return self.remote(repo.name) == want

        try:
            wait_until(same, timeout=timeout, interval=0.02, what=f"{repo.name} mirrored")
        except AssertionError:
            got = self.remote(repo.name)
            missing = sorted(set(want) - set(got))[:5]
            extra = sorted(set(got) - set(want))[:5]
            stale = sorted(p for p in set(want) & set(got) if want[p] != got[p])[:5]
            raise AssertionError(f"missing {missing}, extra {extra}, stale {stale}") from None

    def status(self) -> dict[str, Any]:
        return read_status(self.state / "status.json").to_json()

    def repo_status(self, name: str) -> dict[str, Any]:
        return next((r for r in self.status()["repos"] if r["name"] == name), {})

    def wait_idle(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        """Until the status file says `name` is synced to its HEAD; returns that repo's status."""
        head = self.git(self.projects / name, "rev-parse", "HEAD").strip()

        def done() -> dict[str, Any] | None:
            repo = self.repo_status(name)
            ok = repo.get("state") == "synced" and repo.get("last_synced_commit") == head
            return repo if ok else None

        return wait_until(done, timeout=timeout, what=f"{name} synced to {head[:7]}")


@pytest.fixture
def git(stack: Stack) -> Git:
    return Git({**stack.env, **IDENTITY})


@pytest.fixture
def rig(stack: Stack, workspace: FakeWorkspace, git: Git) -> Iterator[Rig]:
    rig = Rig(stack, workspace, git)
    rig.projects.mkdir(parents=True, exist_ok=True)
    yield rig
    rig.errors.clear()  # the test saw them already, or they are noise from the teardown
    rig.stop()
