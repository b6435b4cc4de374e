"""A PAT-less Databricks App against the fake workspace: no DATABRICKS_TOKEN, only the app's
service-principal credentials; the owner is the app's creator. The gateway runs in-process with its
owner resolver and credential manager (fast retries), tmux is real and started with the same env."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from tornado.httpclient import HTTPResponse

from services import databricks
from services.credentials.manager import CredentialManager
from services.gateway.__main__ import build_policy
from services.gateway.configure import retry_waiting_tracing
from services.gateway.owner import OwnerResolver
from services.tmux import TmuxSessions
from tests.conftest import (
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    OWNER_EMAIL,
    Gateway,
    Stack,
    apps_env,
    serve_gateway,
    tmux_server,
)
from tests.fake_credentials import add_service_principal
from tests.fake_workspace import FakeWorkspace
from tests.helpers import async_wait_until

APP_NAME = "coding-agents-test"
PROXY_HOST = "coding-agents-test-1234.aws.databricksapps.com"
OTHER_TOKEN = "dapi-someone-else"
OTHER_EMAIL = "bob@example.com"
OTHER_NAME = "Bob Builder"


def as_user(email: str | None, **extra: str) -> dict[str, str]:
    headers = {"X-Forwarded-Host": PROXY_HOST, "Origin": f"https://{PROXY_HOST}", **extra}
    if email is not None:
        headers["X-Forwarded-Email"] = email
    return headers


def add_app(ws: FakeWorkspace, creator: str = OWNER_EMAIL) -> None:
    ws.apps_api.apps[APP_NAME] = {
        "name": APP_NAME,
        "creator": creator,
        "url": f"https://{PROXY_HOST}",
        "compute_status": {"state": "ACTIVE", "message": "App compute is active."},
        "app_status": {"state": "RUNNING", "message": "App is running"},
    }


@pytest.fixture
def sp_workspace(workspace: FakeWorkspace) -> FakeWorkspace:
    """The fake with the app (created by the owner), its service principal and one other user."""
    add_service_principal(workspace, APP_CLIENT_ID, APP_CLIENT_SECRET)
    add_app(workspace)
    workspace.add_user(OTHER_TOKEN, OTHER_EMAIL, OTHER_NAME)
    return workspace


def pat_less_env(stack: Stack, workspace: FakeWorkspace, **extra: str) -> dict[str, str]:
    env = apps_env(stack, workspace, **extra)
    del env["DATABRICKS_TOKEN"]
    return env


@pytest.fixture
def pat_less(stack: Stack, sp_workspace: FakeWorkspace) -> Stack:
    stack.env = pat_less_env(
        stack,
        sp_workspace,
        CODING_AGENTS_TOKEN_LIFETIME_SECONDS="3600",
        CODING_AGENTS_TOKEN_MARGIN_SECONDS="600",
    )
    return stack


@pytest.fixture
def tmux(pat_less: Stack) -> Iterator[TmuxSessions]:
    """The tmux server started the production way with the app's (PAT-less) environment."""
    with tmux_server(pat_less.settings, pat_less.env, pat_less.env["PATH"]) as sessions:
        yield sessions


@dataclass
class App:
    gw: Gateway
    resolver: OwnerResolver
    manager: CredentialManager

    async def fetch(
        self, path: str, method: str = "GET", email: str | None = OWNER_EMAIL, **kw: object
    ) -> HTTPResponse:
        return await self.gw.fetch(path, method, auth=False, headers=as_user(email), **kw)

    async def owner_known(self) -> None:
        await async_wait_until(lambda: self.resolver.owner is not None, timeout=20, what="the owner")

    async def settled(self) -> None:
        """Past the start: the kept token restored, or known to be missing."""
        await async_wait_until(
            lambda: self.manager.state not in ("starting", "restoring"), timeout=20, what="a settled state"
        )

    async def state(self) -> dict[str, object]:
        import json

        response = await self.fetch("/api/credentials")
        assert response.code == 200, response.body
        return dict(json.loads(response.body))


@contextlib.asynccontextmanager
async def serve_app(stack: Stack, tmux: TmuxSessions) -> AsyncIterator[App]:
    settings = stack.settings
    resolver = OwnerResolver(
        lambda: databricks.lookup_owner(settings, timeout=1),
        lambda owner: databricks.save_owner(settings, owner),
        first_retry=0.05,
        max_retry=0.2,
    )
    manager = CredentialManager(
        settings, lambda: resolver.owner, timeout=2, retry_seconds=0.5, check_seconds=1.0
    )
    lookup = asyncio.create_task(resolver.run())
    renewing = asyncio.create_task(manager.run())
    try:
        async with serve_gateway(stack, tmux, build_policy(settings, resolver)) as gw:
            gw.resolver = resolver
            gw.ctx.credentials = manager
            manager.on_connected = functools.partial(retry_waiting_tracing, gw.ctx)  # as the gateway does
            yield App(gw, resolver, manager)
    finally:
        lookup.cancel()
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
