"""Issue 15, items 3 and 4: the owner's token renewed before it expires, refusals shown, and the token
back after a restart that wiped the disk (or asked for again when the app may not keep it)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import shutil
import time

import pytest

from services.credentials import store
from services.model_proxy.credentials import Credentials
from services.tmux import TmuxSessions
from tests.conftest import OWNER_EMAIL, OWNER_TOKEN, Stack
from tests.credentials.conftest import App, serve_app
from tests.fake_workspace import FakeWorkspace
from tests.helpers import async_wait_until

TOKEN_LINE = re.compile(r"^token = (.+)$", re.MULTILINE)
TOKEN_CREATE = r"^/api/2\.0/token/create$"


def profile_token(stack: Stack) -> str | None:
    try:
        found = TOKEN_LINE.search((stack.home / ".databrickscfg").read_text())
    except FileNotFoundError:
        return None
    return found.group(1) if found else None


async def paste(app: App, token: str = OWNER_TOKEN) -> dict[str, object]:
    await app.owner_known()
    await app.settled()
    response = await app.fetch("/api/credentials", "PUT", body=json.dumps({"token": token}))
    assert response.code == 200, response.body
    return dict(json.loads(response.body))


def short_lived(stack: Stack) -> None:
    stack.env.update(CODING_AGENTS_TOKEN_LIFETIME_SECONDS="10", CODING_AGENTS_TOKEN_MARGIN_SECONDS="5")


async def test_renewed_before_expiry_old_one_revoked_profile_never_stale_nothing_logged(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    short_lived(pat_less)
    creds = sp_workspace.credentials
    async with serve_app(pat_less, tmux) as app:
        await paste(app)
        samples = 0
        deadline = time.monotonic() + 90
        # The pasted token's own mint, then three renewals: 10 s tokens replaced 5 s before their end.
        while len(creds.history) < 4:
            assert time.monotonic() < deadline, f"only {len(creds.history)} tokens minted"
            token = profile_token(pat_less)
            assert token is not None, "~/.databrickscfg lost its token"
            usable = creds.valid(token) and token in sp_workspace.tokens
            if profile_token(pat_less) == token:  # not replaced between the two reads
                assert usable, "~/.databrickscfg holds an expired or revoked token"
                samples += 1
            await asyncio.sleep(0.05)
        history = list(creds.history)
        for older, newer in itertools.pairwise(history):
            assert older.expires is not None and newer.created < older.expires, "renewed after expiry"
        await async_wait_until(
            lambda: set(creds.revoked) >= {m.token_id for m in history[:3]}, what="the replaced ones revoked"
        )
        status = await app.state()
        assert status["state"] == "connected" and status["source"] == "renewed"
        assert samples > 50
    secrets = [OWNER_TOKEN, *(m.token for m in creds.history)]
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert not [s for s in secrets if s in logged], "a token reached a log"
    for log_file in (pat_less.state_dir / "logs").glob("*"):
        assert not [s for s in secrets if s in log_file.read_text(errors="replace")], log_file


async def test_a_revoked_token_turns_the_panel_red_and_leaves_the_profile(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    short_lived(pat_less)
    async with serve_app(pat_less, tmux) as app:
        await paste(app)
        minted = sp_workspace.credentials.history[0]
        sp_workspace.tokens.pop(minted.token)  # the owner revoked it in the workspace
        await async_wait_until(lambda: app.manager.state == "refused", timeout=30, what="a refusal")
        status = await app.state()
        assert "revoked or expired" in str(status["reason"]) and status["in_use"] is False
        assert profile_token(pat_less) is None and not store.token_path(pat_less.settings).exists()
        # The models keep working meanwhile: the model proxy's credential is the service principal's.
        proxy_credentials = Credentials(pat_less.settings)
        assert proxy_credentials.mode == "oauth-m2m"
        assert (await proxy_credentials.headers())["Authorization"].startswith("Bearer sp-oauth-")
        # Asked again: a new paste connects.
        assert (await paste(app))["state"] == "connected"


async def test_a_workspace_that_forbids_tokens_is_shown_and_the_token_dropped_at_expiry(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    short_lived(pat_less)
    async with serve_app(pat_less, tmux) as app:
        await paste(app)
        minted = sp_workspace.credentials.history[0]
        sp_workspace.refusals.append(
            ("POST", TOKEN_CREATE, 403, "PERMISSION_DENIED", "Token creation is disabled by your admin")
        )
        await async_wait_until(lambda: app.manager.state == "refused", timeout=30, what="a refusal")
        status = await app.state()
        assert "Token creation is disabled by your admin" in str(status["reason"])
        assert status["in_use"] is True and profile_token(pat_less) == minted.token  # valid a while yet
        assert minted.expires is not None
        await async_wait_until(lambda: profile_token(pat_less) is None, timeout=30, what="the token dropped")
        assert time.time() >= minted.expires - 1, "dropped while still valid"
        assert (await app.state())["in_use"] is False


async def test_where_tokens_cannot_be_minted_the_pasted_one_is_used_and_checked(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    sp_workspace.refusals.append(
        ("POST", TOKEN_CREATE, 403, "PERMISSION_DENIED", "Token creation is disabled by your admin")
    )
    async with serve_app(pat_less, tmux) as app:
        status = await paste(app)
        assert status["state"] == "connected" and status["minted_by_app"] is False
        assert "would not mint a renewal" in str(status["note"]) and status["expires_at"] is None
        assert profile_token(pat_less) == OWNER_TOKEN
        sp_workspace.tokens.pop(OWNER_TOKEN)  # it stops working (revoked, or its own expiry)
        await async_wait_until(lambda: app.manager.state == "refused", timeout=30, what="the check")
        assert "the token you pasted no longer works" in str((await app.state())["reason"])
        assert profile_token(pat_less) is None
    assert sp_workspace.credentials.revoked == []  # never the owner's own token


def wipe_disk(stack: Stack) -> None:
    """What a restart on Databricks Apps does to the app's files (tmux's socket aside: the test's
    tmux server outlives the 'restart')."""
    for entry in stack.state_dir.iterdir():
        if entry.name != "tmux.sock":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    (stack.home / ".databrickscfg").unlink(missing_ok=True)


async def test_a_restart_with_the_disk_wiped_brings_the_token_back(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    async with serve_app(pat_less, tmux) as app:
        status = await paste(app)
        assert status["kept_across_restarts"] is True
        minted = sp_workspace.credentials.history[0]
    scope = sp_workspace.apps_api.scopes["coding-agents-test-app-credential"]
    assert scope["acls"] == {"app-sp-client-id": "MANAGE"}  # the service principal's own scope
    wipe_disk(pat_less)
    async with serve_app(pat_less, tmux) as app:
        await app.owner_known()
        await app.settled()
        status = await app.state()
        assert status["state"] == "connected" and status["source"] == "restored", status
        assert profile_token(pat_less) == minted.token
        assert store.owner_token(pat_less.settings) == minted.token
        assert OWNER_EMAIL in (pat_less.home / ".gitconfig").read_text()


async def test_without_the_secret_permission_the_page_asks_again_and_says_why(
    pat_less: Stack, tmux: TmuxSessions, sp_workspace: FakeWorkspace
) -> None:
    sp_workspace.refusals.append(
        ("POST", r"^/api/2\.0/secrets/scopes/create$", 403, "PERMISSION_DENIED", "no CREATE_SCOPE for you")
    )
    async with serve_app(pat_less, tmux) as app:
        status = await paste(app)
        assert status["state"] == "connected" and status["kept_across_restarts"] is False
        assert "no CREATE_SCOPE for you" in str(status["backup_error"])
    wipe_disk(pat_less)
    async with serve_app(pat_less, tmux) as app:
        await app.owner_known()
        await app.settled()
        status = await app.state()
        assert status["state"] == "missing" and status["in_use"] is False
        assert "cannot keep your token across restarts" in str(status["reason"])
        assert "no CREATE_SCOPE for you" in str(status["reason"])
        assert profile_token(pat_less) is None
