"""Fixtures: every test gets its own tmux server, state dir, port and HOME; nothing is shared."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.process import Subprocess

from services import databricks
from services.config import Settings
from services.gateway.__main__ import build_policy
from services.gateway.app import make_app, server_options
from services.gateway.auth import AccessPolicy
from services.gateway.context import GatewayContext
from services.gateway.downloads import announcer_for
from services.gateway.longpoll import PollRegistry
from services.gateway.owner import OwnerResolver
from services.setup import registry
from services.shell_env import shell_path
from services.tmux import TmuxSessions
from tests.fake_workspace import FakeWorkspace
from tests.helpers import free_port, short_tempdir, stack_env, start_tmuxd, wait_until

TOKEN = "test-token-0123456789"
OWNER_TOKEN = "dapi-owner-0123456789abcdef"
OWNER_EMAIL = "Alice@Example.com"
OWNER_NAME = "Alice Example"
APP_CLIENT_ID = "app-sp-client-id"
APP_CLIENT_SECRET = "app-sp-secret-do-not-leak"


@dataclass
class Stack:
    """One isolated copy of the system's environment (the processes are started by fixtures)."""

    root: Path
    home: Path
    state_dir: Path
    port: int
    token: str
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)


@pytest.fixture
def stack() -> Iterator[Stack]:
    root = short_tempdir()
    home, state_dir = root / "home", root / "state"
    home.mkdir()
    port = free_port()
    yield Stack(root, home, state_dir, port, TOKEN, stack_env(home, state_dir, port, TOKEN))
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tmux(stack: Stack) -> Iterator[TmuxSessions]:
    """A real tmux server started the production way (services.tmuxd), on the stack's socket."""
    with tmux_server(stack.settings, stack.env, shell_path(stack.settings, stack.env)) as sessions:
        yield sessions


@contextlib.contextmanager
def tmux_server(settings: Settings, env: dict[str, str], path: str) -> Iterator[TmuxSessions]:
    """services.tmuxd started with `env`, until its server answers; killed (and reaped) after."""
    proc = start_tmuxd(env)
    sessions = TmuxSessions.for_socket(settings.tmux_socket, settings.tmux_bin, settings.projects_dir, path)
    wait_until(sessions.is_running, timeout=10, what="tmux server")
    try:
        yield sessions
    finally:
        kill = [settings.tmux_bin, "-S", str(settings.tmux_socket), "kill-server"]
        subprocess.run(kill, capture_output=True, check=False)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@dataclass
class Gateway:
    url: str
    token: str
    ctx: GatewayContext
    http: AsyncHTTPClient
    resolver: OwnerResolver | None = None

    async def fetch(
        self, path: str, method: str = "GET", auth: bool = True, **kwargs: object
    ) -> HTTPResponse:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if auth:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        if method in ("POST", "PUT", "PATCH") and "body" not in kwargs:
            kwargs["body"] = b""
        return await self.http.fetch(
            self.url + path,
            method=method,
            headers=headers,
            raise_error=False,
            follow_redirects=False,
            **kwargs,
        )


@pytest.fixture
def workspace() -> Iterator[FakeWorkspace]:
    """A fake workspace on 127.0.0.1 whose only user (the app owner) holds OWNER_TOKEN."""
    ws = FakeWorkspace()
    ws.add_user(OWNER_TOKEN, OWNER_EMAIL, OWNER_NAME)
    ws.start()
    yield ws
    ws.stop()


def apps_env(stack: Stack, workspace: FakeWorkspace, **extra: str) -> dict[str, str]:
    """The stack's environment as Databricks Apps would set it, pointed at the fake workspace."""
    env = {k: v for k, v in stack.env.items() if k != "CODING_AGENTS_TOKEN"}
    env.update(
        DATABRICKS_APP_NAME="coding-agents-test",
        DATABRICKS_HOST=workspace.url,
        DATABRICKS_TOKEN=OWNER_TOKEN,
        # Injected by the Apps runtime for the app's service principal; must never reach a shell.
        DATABRICKS_CLIENT_ID=APP_CLIENT_ID,
        DATABRICKS_CLIENT_SECRET=APP_CLIENT_SECRET,
        DATABRICKS_WORKSPACE_ID="1234567890",
    )
    env.update(extra)
    return env


@pytest.fixture
async def gateway(stack: Stack, tmux: TmuxSessions) -> AsyncIterator[Gateway]:
    """The gateway application in-process on a free port, attached to the stack's tmux server."""
    async with serve_gateway(stack, tmux, build_policy(stack.settings)) as gw:
        yield gw


@pytest.fixture
async def degraded_gateway(stack: Stack) -> AsyncIterator[Gateway]:
    """The gateway without tmux, as after a failed install: CODING_AGENTS_TMUX names a missing file
    (tests may put a tmux there later) and no tmux server runs."""
    stack.env["CODING_AGENTS_TMUX"] = str(stack.root / "bin" / "tmux")
    settings = stack.settings
    sessions = TmuxSessions.for_socket(
        settings.tmux_socket, settings.tmux_bin, settings.projects_dir, shell_path(settings, stack.env)
    )
    async with serve_gateway(stack, sessions, build_policy(settings)) as gw:
        yield gw


@pytest.fixture
async def apps_gateway(stack: Stack, tmux: TmuxSessions, workspace: FakeWorkspace) -> AsyncIterator[Gateway]:
    async with serve_apps_gateway(stack, tmux, workspace) as gw:
        yield gw


@contextlib.asynccontextmanager
async def serve_apps_gateway(
    stack: Stack, tmux: TmuxSessions, workspace: FakeWorkspace
) -> AsyncIterator[Gateway]:
    """The gateway in Apps mode, its owner looked up in the fake workspace (fast retries)."""
    stack.env = apps_env(stack, workspace)
    settings = stack.settings
    resolver = OwnerResolver(
        lambda: databricks.lookup_owner(settings, timeout=1), first_retry=0.05, max_retry=0.2
    )
    task = asyncio.create_task(resolver.run())
    try:
        async with serve_gateway(stack, tmux, build_policy(settings, resolver)) as gw:
            gw.resolver = resolver
            yield gw
    finally:
        task.cancel()


@contextlib.asynccontextmanager
async def serve_gateway(stack: Stack, tmux: TmuxSessions, policy: AccessPolicy) -> AsyncIterator[Gateway]:
    settings = stack.settings
    Subprocess.initialize()
    ctx = GatewayContext(
        settings=settings,
        sessions=tmux,
        policy=policy,
        attach_env=stack.env,
        polls=PollRegistry(),
        registry=registry.load(),
    )
    await ctx.terminals.ensure("main")
    server = HTTPServer(make_app(ctx, "test-cookie-secret"), **server_options())
    server.listen(stack.port, "127.0.0.1")
    http = AsyncHTTPClient(force_instance=True)
    announcing = asyncio.create_task(announcer_for(ctx).run())
    yield Gateway(f"http://127.0.0.1:{stack.port}", stack.token, ctx, http)
    announcing.cancel()
    await ctx.close_all()
    server.stop()
    await server.close_all_connections()
    http.close()
    ctx.executor.shutdown(wait=True)
    Subprocess.uninitialize()
