"""`python -m services.sync` as a process: killed at any moment it resumes exactly where it was;
SIGTERM stops it within 3 s; a second copy on the same state dir refuses to run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT
from tests.helpers import wait_until
from tests.sync.conftest import Rig, workspace_env

FILES = 240


def spawn(rig: Rig, log: Path) -> subprocess.Popen[bytes]:
    env = {**workspace_env(rig.stack, rig.workspace), "CODING_AGENTS_SYNC_BUNDLE_IDLE_SECONDS": "0.2"}
    with Path(log).open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.sync"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def file_imports(rig: Rig, name: str) -> int:
    return len(
        [r for r in rig.workspace.calls("/workspace/import") if f"/projects/{name}/".encode() in r.body]
    )


def test_kill_9_mid_sync_resumes_with_only_what_is_missing(
    rig: Rig, procs: list[subprocess.Popen[bytes]]
) -> None:
    rig.workspace.latency = 0.02  # a slow workspace, so the kill lands mid-sync
    repo = rig.repo("big", {f"d{i % 12}/f{i}.txt": f"{i}\n" for i in range(FILES)})
    log = rig.stack.root / "sync.log"
    procs.append(first := spawn(rig, log))
    wait_until(lambda: file_imports(rig, "big") >= FILES // 3, timeout=30, what="a third uploaded")
    first.send_signal(signal.SIGKILL)
    first.wait()
    with sqlite3.connect(rig.state / "journal.sqlite") as db:
        done = db.execute("SELECT count(*) FROM progress WHERE repo = 'big'").fetchone()[0]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert done >= FILES // 3 - 8  # journaled as they landed (bar the last few in flight)
    before = file_imports(rig, "big")
    rig.workspace.latency = 0.0
    procs.append(spawn(rig, log))
    rig.wait_mirrored(repo, timeout=30)
    redone = file_imports(rig, "big") - before
    # Only what was missing, plus at most the calls that were on the wire when it died.
    assert redone <= FILES - done + 8, f"{redone} uploads after restart, {done} were journaled"
    line = f"({redone} uploaded, 0 deleted)"
    wait_until(lambda: line in log.read_text(), timeout=10, what=f"the log line {line!r}")


def test_sigterm_stops_within_three_seconds_even_with_calls_hanging(
    rig: Rig, procs: list[subprocess.Popen[bytes]]
) -> None:
    rig.workspace.fault_paths = r"/workspace/import"
    rig.workspace.hang_rate, rig.workspace.hang_seconds = 1.0, 30.0
    rig.repo("stuck", {f"f{i}.txt": "x\n" for i in range(20)})
    log = rig.stack.root / "sync.log"
    procs.append(proc := spawn(rig, log))
    wait_until(lambda: rig.workspace.calls("/workspace/import"), timeout=30, what="an upload hanging")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 3.0
    with sqlite3.connect(rig.state / "journal.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert "stopping (SIGTERM)" in log.read_text()


def test_a_second_watcher_on_the_same_state_dir_refuses(
    rig: Rig, procs: list[subprocess.Popen[bytes]]
) -> None:
    log = rig.stack.root / "sync.log"
    procs.append(spawn(rig, log))
    wait_until(lambda: (rig.state / "status.json").exists(), timeout=30, what="first watcher up")
    second = spawn(rig, log)
    procs.append(second)
    assert second.wait(timeout=30) == 3
    assert "another sync watcher is running" in log.read_text()
