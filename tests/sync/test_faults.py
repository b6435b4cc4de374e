"""A flaky workspace (500s, 429 + Retry-After, hung requests): the mirror still ends equal to HEAD."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.fake_workspace import Recorded
from tests.helpers import wait_until
from tests.sync.conftest import Rig


def churn(rig: Rig, repo: Path, rounds: int) -> None:
    """Commits that edit, add, delete and rename, while the watcher is busy retrying."""
    for i in range(rounds):
        files: dict[str, bytes | str] = {f"src/m{i % 9}.py": f"V = {i}\n", f"docs/{i}.md": f"# {i}\n"}
        delete = (f"docs/{i - 2}.md",) if (repo / f"docs/{i - 2}.md").exists() else ()
        rig.git.commit(repo, f"round {i}", files, delete=delete)
        if i % 4 == 3:
            rig.git(repo, "mv", f"docs/{i}.md", f"docs/renamed-{i}.md")
            rig.git.commit(repo, f"rename {i}")


def key(request: Recorded) -> tuple[str, str]:
    """Which call a request is (endpoint and workspace path), to find its retries."""
    if "path" in request.query:
        return request.path, request.query["path"][0]
    field = re.search(rb'name="path"\r\n\r\n([^\r]*)', request.body)
    if field:
        return request.path, field.group(1).decode()
    return request.path, str(json.loads(request.body or b"{}").get("path"))


def seed_repo(rig: Rig, name: str, count: int = 60) -> Path:
    files: dict[str, bytes | str] = {f"pkg/{i // 10}/f{i}.txt": f"file {i}\n" * (i + 1) for i in range(count)}
    return rig.repo(name, files)


def test_thirty_percent_server_errors(rig: Rig) -> None:
    rig.workspace.fail_rate = 0.3
    repo = seed_repo(rig, "flaky")
    rig.start()
    churn(rig, repo, 12)
    rig.wait_mirrored(repo, timeout=40)
    rig.wait_idle("flaky", timeout=20)
    assert rig.workspace.faults["fail"] > 10


def test_throttling_honours_retry_after(rig: Rig) -> None:
    rig.workspace.throttle_rate = 0.1
    rig.workspace.retry_after = 1
    repo = seed_repo(rig, "throttled", 30)
    rig.start()
    rig.wait_mirrored(repo, timeout=40)
    rig.wait_idle("throttled", timeout=20)
    ws = rig.workspace
    assert ws.faults["throttle"] > 0
    calls = ws.calls("/api/2.0/workspace/")
    for throttled in (r for r in calls if r.fault == "throttle"):
        # The same call is tried again only after Retry-After...
        again = [r for r in calls if r.at > throttled.at and key(r) == key(throttled)]
        assert again and again[0].at - throttled.at >= 0.9, f"{key(throttled)} retried too soon"
        # ...and nobody else calls meanwhile (0.1 s of slack for calls already leaving).
        too_soon = [r for r in calls if throttled.at + 0.1 < r.at < throttled.at + 0.9]
        assert not too_soon, f"{len(too_soon)} calls within a second of a 429"


def test_hung_requests_time_out_and_are_retried(rig: Rig) -> None:
    rig.workspace.hang_rate = 0.15
    rig.workspace.hang_seconds = 1.0
    repo = seed_repo(rig, "hangs", 30)
    rig.start(http_timeout=0.4)  # hangs outlast the client's timeout: it gives up and retries
    churn(rig, repo, 4)
    rig.wait_mirrored(repo, timeout=40)
    rig.wait_idle("hangs", timeout=20)
    assert rig.workspace.faults["hang"] > 0


def test_everything_at_once_with_commits_during_the_storm(rig: Rig) -> None:
    ws = rig.workspace
    ws.fail_rate, ws.throttle_rate, ws.hang_rate = 0.2, 0.05, 0.05
    ws.retry_after, ws.hang_seconds = 1, 0.5
    repo = seed_repo(rig, "storm", 40)
    rig.start()
    churn(rig, repo, 10)
    rig.wait_mirrored(repo, timeout=60)
    status = rig.wait_idle("storm", timeout=30)
    assert status["last_error"] is None and status["pending"] == 0


def test_workspace_down_at_start_then_back(rig: Rig) -> None:
    rig.workspace.mode = "fail"  # every call, the owner lookup included, answers 500
    repo = seed_repo(rig, "patient", 5)
    rig.start()
    status = wait_until(lambda: rig.status() if rig.status()["state"] == "error" else None, what="error")
    assert "cannot reach the workspace" in status["reason"]
    # Known locally all the same: pending (not "removed"), hook in place, new commits counted.
    assert [(r["name"], r["state"], r["pending"]) for r in status["repos"]] == [("patient", "pending", 1)]
    assert (repo / ".git" / "hooks" / "post-commit").exists()
    rig.git.commit(repo, "while down", {"late.txt": "l\n"})
    wait_until(lambda: rig.repo_status("patient").get("pending") == 2, what="2 pending")
    rig.workspace.mode = "ok"
    rig.wait_mirrored(repo, timeout=20)
    assert rig.wait_idle("patient")["last_error"] is None and rig.status()["reason"] == ""
