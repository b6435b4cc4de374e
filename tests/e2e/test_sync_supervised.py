"""The sync watcher under the real supervisord: kill -9 mid-sync and supervisord's restart finishes
the job; SIGTERM stops it in time; the gateway serves its status; `scripts/ctl tail sync` reads well."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from typing import Any

import pytest

from tests.conftest import OWNER_TOKEN, Stack
from tests.e2e.conftest import RunningApp, process_alive, start_app, stop_app
from tests.fake_workspace import FakeWorkspace
from tests.helpers import wait_until
from tests.sync.conftest import IDENTITY, REMOTE_ROOT, Git

pytestmark = pytest.mark.slow
FILES = 300


def api_sync(app: RunningApp) -> dict[str, Any]:
    request = urllib.request.Request(
        app.url + "/api/sync", headers={"Authorization": f"Bearer {app.stack.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def remote(workspace: FakeWorkspace, name: str) -> dict[str, bytes]:
    prefix = f"{REMOTE_ROOT}/{name}/"
    with workspace.lock:
        return {p[len(prefix) :]: d for p, d in workspace.files.items() if p.startswith(prefix)}


def test_kill_9_mid_sync_then_supervisord_restarts_it_and_it_finishes(
    stack: Stack, workspace: FakeWorkspace
) -> None:
    git = Git({**stack.env, **IDENTITY})
    repo = git.init(stack.home / "projects" / "big")
    git.commit(repo, "many files", {f"d{i % 10}/f{i}.txt": f"{i}\n" for i in range(FILES)})
    workspace.latency = 0.02  # slow enough that the kill lands mid-sync
    stack.env.update(DATABRICKS_HOST=workspace.url, DATABRICKS_TOKEN=OWNER_TOKEN)
    app = start_app(stack)
    try:
        wait_until(
            lambda: len(workspace.calls("/workspace/import")) >= FILES // 3,
            timeout=60,
            what="a third uploaded",
        )
        pid = app.program_pid("sync")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not process_alive(pid), timeout=10, what="the watcher dead")
        workspace.latency = 0.0
        wait_until(lambda: app.program_pid("sync") not in (0, pid), timeout=30, what="supervisord restart")
        want = git.tracked(repo)
        wait_until(lambda: remote(workspace, "big") == want, timeout=60, what="mirror complete")
        status = wait_until(
            lambda: (s := api_sync(app))["state"] == "idle" and s, timeout=30, what="/api/sync idle"
        )
        (entry,) = status["repos"]
        assert entry["name"] == "big" and entry["state"] == "synced"
        assert entry["last_synced_commit"] == git(repo, "rev-parse", "HEAD").strip()
        # Resumed, not restarted: at most the calls on the wire at the kill were repeated.
        uploads = [r for r in workspace.calls("/workspace/import") if b"/projects/big/" in r.body]
        assert len(uploads) <= FILES + 8, len(uploads)

        # The restarted watcher still hears the hook (its speed is scripts/bench's business).
        git.commit(repo, "one more", {"d0/f0.txt": "changed\n"})
        wait_until(
            lambda: remote(workspace, "big").get("d0/f0.txt") == b"changed\n", timeout=10, what="commit"
        )

        log = app.ctl("tail", "sync")
        assert "[big] synced" in log and "uploaded" in log, log

        # SIGTERM (scripts/ctl stop) ends it within supervisord's 3 s: no SIGKILL was needed.
        out = app.ctl("stop", "sync")
        assert "stopped" in out, out
        supervisord_log = (stack.state_dir / "logs" / "supervisord.log").read_text()
        assert "killing 'sync'" not in supervisord_log
        assert "stopping (SIGTERM)" in (stack.state_dir / "logs" / "sync.log").read_text()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{app.log()}") from None
    finally:
        stop_app(app)
