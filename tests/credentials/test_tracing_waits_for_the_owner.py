"""MLflow tracing wanted on a PAT-less app: setup configures Claude Code before the owner's token is
there, so tracing stays off with the reason; connecting the token turns it on, with no restart."""

from __future__ import annotations

import json

from services.gateway.configure import configure_agent
from services.setup.tracing import hook_command
from services.statefiles import read_tracing_status
from services.tmux import TmuxSessions
from tests.conftest import OWNER_EMAIL, OWNER_TOKEN, Stack
from tests.credentials.conftest import serve_app
from tests.fake_workspace import FakeWorkspace
from tests.helpers import async_wait_until


async def test_tracing_turns_on_once_the_owners_token_is_connected(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    pat_less.env["CODING_AGENTS_MLFLOW_TRACING"] = "claude"
    settings = pat_less.settings
    async with serve_app(pat_less, tmux) as app:
        await app.owner_known()
        await app.settled()
        registry = app.gw.ctx.registry
        claude = registry.agent("claude") if registry else None
        assert registry is not None and claude is not None
        # What setup does at start, before any token of the owner.
        assert await app.gw.ctx.run_blocking(configure_agent, registry, claude, pat_less.env) == ""
        waiting = read_tracing_status(settings.files.tracing_status("claude"))
        assert waiting.wanted and not waiting.on and "no token of the owner" in waiting.reason
        listed = json.loads((await app.fetch("/api/models")).body)["agents"]["claude"]["tracing"]
        assert listed["wanted"] and not listed["on"] and "no token of the owner" in listed["reason"]

        response = await app.fetch("/api/credentials", "PUT", body=json.dumps({"token": OWNER_TOKEN}))
        assert response.code == 200, response.body

        def traced() -> bool:
            return read_tracing_status(settings.files.tracing_status("claude")).on

        await async_wait_until(traced, timeout=60, what="tracing on after the token was connected")
        experiment = sp_workspace.mlflow.by_name(f"/Users/{OWNER_EMAIL}/coding-agents")
        assert experiment is not None
        hooks = json.loads((pat_less.home / ".claude" / "settings.json").read_text())["hooks"]["Stop"]
        assert any(h["command"] == hook_command() for g in hooks for h in g["hooks"])
        # Created as the owner (the app's minted token), never as the app's service principal.
        created = sp_workspace.calls("/mlflow/experiments/create")[-1]
        assert not created.headers["authorization"].startswith("Bearer sp-oauth-")
