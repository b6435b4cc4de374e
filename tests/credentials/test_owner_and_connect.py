"""Issue 15, items 1, 2 and 6: the owner without a PAT, and connecting the workspace from the page.

Real parts: the gateway (Tornado, in-process), tmux, databricks-sdk (OAuth M2M for the app's service
principal, PATs for the owner) against the fake workspace, the sync watcher in a thread, git.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from services.credentials import store
from services.databricks import CREATOR_SOURCE
from services.sync.status import OverallState, read_status, status_path
from services.sync.watcher import Watcher
from services.tmux import TmuxSessions
from tests.conftest import OWNER_EMAIL, OWNER_NAME, OWNER_TOKEN, Stack
from tests.credentials.conftest import OTHER_EMAIL, OTHER_NAME, OTHER_TOKEN, serve_app
from tests.fake_workspace import FakeWorkspace
from tests.helpers import TermClient, async_wait_until, wait_until
from tests.sync.conftest import FAST, Git


def git_config(path: Path, key: str) -> str:
    result = subprocess.run(["git", "config", "--file", str(path), key], capture_output=True, text=True)
    return result.stdout.strip()


APPS_GET = r"^/api/2\.0/apps/coding-agents-test$"


async def test_without_a_pat_the_owner_is_the_apps_creator(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    async with serve_app(pat_less, tmux) as app:
        await app.owner_known()
        assert app.resolver.owner is not None and app.resolver.owner.email == OWNER_EMAIL
        assert (await app.fetch("/api/sessions")).code == 200
        other = await app.fetch("/api/sessions", email=OTHER_EMAIL)
        assert other.code == 403 and f"this app belongs to {OWNER_EMAIL}" in other.body.decode()
        # Asked with the service principal's OAuth token, not a PAT.
        calls = sp_workspace.calls(APPS_GET)
        assert calls and calls[0].headers["authorization"].startswith("Bearer sp-oauth-")
        # The models need no token of the owner: the endpoints are listed as the service principal.
        models = await app.fetch("/api/models")
        assert models.code == 200, models.body
        assert json.loads(models.body)["families"]["anthropic"] == ["databricks-claude-opus-4-6"]
        listed = sp_workspace.calls(r"^/api/2\.0/serving-endpoints$")[-1]
        assert listed.headers["authorization"].startswith("Bearer sp-oauth-")
        await app.settled()
        status = await app.state()
        assert status["state"] == "missing" and status["in_use"] is False
        assert status["owner"] == {"email": OWNER_EMAIL, "display_name": "Alice", "source": CREATOR_SOURCE}


async def test_creator_lookup_failing_is_503_then_in_without_restart(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    sp_workspace.refusals.append(("GET", APPS_GET, 500, "INTERNAL_ERROR", "the apps service is down"))
    async with serve_app(pat_less, tmux) as app:
        await async_wait_until(lambda: app.resolver.status.attempts >= 2, what="failed lookups")
        response = await app.fetch("/api/sessions")
        assert response.code == 503
        assert "the apps service is down" in json.loads(response.body)["error"]
        assert (await app.fetch("/api/sessions", email=OTHER_EMAIL)).code == 503
        sp_workspace.refusals.clear()
        await app.owner_known()
        assert (await app.fetch("/api/sessions")).code == 200


async def test_a_token_of_someone_else_is_refused_naming_them(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    async with serve_app(pat_less, tmux) as app:
        await app.owner_known()
        response = await app.fetch("/api/credentials", "PUT", body=json.dumps({"token": OTHER_TOKEN}))
        assert response.code == 403
        error = json.loads(response.body)["error"]
        assert f"{OTHER_NAME} ({OTHER_EMAIL})" in error and OWNER_EMAIL in error
        assert not store.token_path(pat_less.settings).exists()
        assert not (pat_less.home / ".databrickscfg").exists()
        assert sp_workspace.calls(r"^/api/2\.0/token/create$") == []
        # Bad input gets a clear 400; another user and a foreign Origin never reach the check.
        for body in (b"{}", b'{"token": 5}', b'{"token": "a b"}', b"[1]"):
            assert (await app.fetch("/api/credentials", "PUT", body=body)).code == 400, body
        hostile = await app.gw.fetch(
            "/api/credentials",
            "PUT",
            auth=False,
            body=json.dumps({"token": OWNER_TOKEN}),
            headers={"X-Forwarded-Email": OWNER_EMAIL, "Origin": "https://evil.example.com"},
        )
        assert hostile.code == 403
        by_other = await app.fetch(
            "/api/credentials", "PUT", email=OTHER_EMAIL, body=json.dumps({"token": OWNER_TOKEN})
        )
        assert by_other.code == 403 and not store.token_path(pat_less.settings).exists()
        too_big = await app.fetch("/api/credentials", "PUT", body=b'{"token": "' + b"x" * 20000 + b'"}')
        assert too_big.code == 413


async def test_the_owners_token_connects_cli_sync_and_git_without_a_restart(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    settings = pat_less.settings
    git = Git({**os.environ, "HOME": str(pat_less.home), "GIT_CONFIG_NOSYSTEM": "1"})
    repo = git.init(settings.projects_dir / "demo")
    git(
        repo,
        "-c",
        "user.name=T",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    (repo / "hello.txt").write_text("hello from the terminal\n")
    git(repo, "add", "hello.txt")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "hello")
    stop = threading.Event()
    async with serve_app(pat_less, tmux) as app:
        await app.owner_known()
        watcher = Watcher(settings, FAST, stop)
        thread = threading.Thread(target=watcher.run, name="sync", daemon=True)
        thread.start()
        try:
            # Idle: no credential yet.
            def sync_idle() -> bool:
                return read_status(status_path(settings)).state is OverallState.NO_WORKSPACE

            await async_wait_until(sync_idle, what="the sync idling without a workspace")
            response = await app.fetch("/api/credentials", "PUT", body=json.dumps({"token": OWNER_TOKEN}))
            assert response.code == 200, response.body
            status = json.loads(response.body)
            assert status["state"] == "connected" and status["source"] == "pasted"
            assert status["minted_by_app"] is True and status["kept_across_restarts"] is True
            assert abs(float(status["expires_at"]) - (time.time() + 3600)) < 60
            minted = sp_workspace.credentials.history[0]
            assert OWNER_TOKEN not in response.body.decode() and minted.token not in response.body.decode()
            assert minted.token not in (await app.fetch("/api/credentials")).body.decode()

            cfg = pat_less.home / ".databrickscfg"
            assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
            assert f"token = {minted.token}" in cfg.read_text() and OWNER_TOKEN not in cfg.read_text()
            assert stat.S_IMODE(store.token_path(settings).stat().st_mode) == 0o600

            # The CLI's SDK in a terminal shell acts as the owner (through ~/.databrickscfg).
            client = await TermClient.connect(
                app.gw.url, "main", None, headers={"X-Forwarded-Email": OWNER_EMAIL}
            )
            await client.wait_ready()
            probe = (
                "from databricks.sdk import WorkspaceClient as W; "
                "print('ME=' + W().current_user.me().user_name)"
            )
            await client.type(f'{sys.executable} -c "{probe}"\r')
            await client.wait_text(f"ME={OWNER_EMAIL}", timeout=30)
            client.close()

            # The sync connects and uploads, as the owner.
            uploaded = f"/Users/{OWNER_EMAIL}/projects/demo/hello.txt"
            wait_until(lambda: uploaded in sp_workspace.files, timeout=30, what="the sync's upload")
            upload = sp_workspace.calls(r"^/api/2\.0/workspace/import$")[-1]
            assert upload.headers["authorization"] == f"Bearer {minted.token}"

            # git commits in the terminal are the owner's.
            gitconfig = pat_less.home / ".gitconfig"
            assert git_config(gitconfig, "user.email") == OWNER_EMAIL
            assert git_config(gitconfig, "user.name") == OWNER_NAME
            # The pasted token is the owner's own: never revoked by the app.
            assert sp_workspace.credentials.revoked == []
        finally:
            stop.set()
            thread.join(timeout=10)
