"""`python -m services.gateway`: the web gateway under supervisord."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal

from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from tornado.process import Subprocess

from services import databricks, entry, state
from services.config import DEFAULT_SESSION, Settings
from services.credentials.manager import CredentialManager
from services.gateway.app import LISTEN_BACKLOG, make_app, server_options
from services.gateway.auth import AccessPolicy, AppsOwnerPolicy, LocalTokenPolicy
from services.gateway.configure import retry_waiting_tracing
from services.gateway.context import GatewayContext
from services.gateway.downloads import announcer_for
from services.gateway.longpoll import PollRegistry
from services.gateway.owner import OwnerResolver
from services.gateway.terminals import GRACE_SECONDS
from services.setup import registry
from services.shell_env import shell_environment, shell_path
from services.tmux import TmuxError, TmuxSessions
from services.version import app_version

log = logging.getLogger("gateway")


def local_token(settings: Settings) -> str:
    if settings.token_override:
        return settings.token_override
    return state.secret_file(settings.files.local_token)


def build_policy(settings: Settings, resolver: OwnerResolver | None = None) -> AccessPolicy:
    if settings.apps_mode:
        if resolver is None:
            raise ValueError("Apps mode needs an owner resolver")
        return AppsOwnerPolicy(resolver)
    return LocalTokenPolicy(local_token(settings), settings.port, settings.allowed_hosts)


def owner_resolver(settings: Settings) -> OwnerResolver:
    # Published for the other processes; the setup runner writes the owner's git and CLI identity.
    return OwnerResolver(
        lambda: databricks.lookup_owner(settings), lambda owner: databricks.save_owner(settings, owner)
    )


def credential_manager(settings: Settings, resolver: OwnerResolver) -> CredentialManager:
    return CredentialManager(settings, lambda: resolver.owner)


class Gateway:
    """Lifecycle: start (bind, then make the default session in the background), run, stop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()
        self.resolver = owner_resolver(settings) if settings.apps_mode else None
        self.ctx = GatewayContext(
            settings=settings,
            sessions=TmuxSessions.for_socket(
                settings.tmux_socket,
                settings.tmux_bin,
                settings.projects_dir,
                shell_path(settings, os.environ),
            ),
            policy=build_policy(settings, self.resolver),
            attach_env=shell_environment(settings, os.environ),
            polls=PollRegistry(),
        )
        if self.resolver is not None:
            self.ctx.credentials = credential_manager(settings, self.resolver)
            self.ctx.credentials.on_connected = functools.partial(retry_waiting_tracing, self.ctx)
        try:
            self.ctx.registry = registry.load(registry.registry_path(os.environ))
        except registry.RegistryError as exc:
            log.error("%s", exc)
            self.ctx.registry_error = str(exc)
        self.server: HTTPServer | None = None

    async def ensure_default_session(self) -> None:
        # tmux starts beside us under supervisord; wait for it rather than failing the first page.
        # Without tmux (degraded mode, decided at once when there is no binary) the session is a
        # shell on our own PTY; a tmux server that never answers degrades after the grace period.
        deadline = asyncio.get_running_loop().time() + GRACE_SECONDS + 5
        while True:
            self.ctx.terminals.check()
            try:
                await self.ctx.terminals.ensure(DEFAULT_SESSION)
                mode = "without tmux (degraded)" if self.ctx.terminals.degraded else "in tmux"
                log.info("default session %r ready, %s", DEFAULT_SESSION, mode)
                return
            except TmuxError:
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.05)
        log.error("tmux server not reachable at %s; sessions unavailable", self.settings.tmux_socket)

    def expire_idle_polls(self) -> None:
        assert self.ctx.polls is not None
        if closed := self.ctx.polls.expire_idle():
            log.info("closed %d idle long-poll connection(s)", closed)

    async def run(self) -> None:
        Subprocess.initialize()  # reap `tmux attach` children via SIGCHLD
        cookie_secret = state.secret_file(self.settings.files.cookie_secret)
        app = make_app(self.ctx, cookie_secret)
        self.server = HTTPServer(app, **server_options())
        self.server.listen(self.settings.port, self.settings.bind_host, backlog=LISTEN_BACKLOG)
        where = f"http://{self.settings.bind_host}:{self.settings.port}"
        log.info("coding-agents %s listening on %s", app_version(), where)
        default_session = asyncio.create_task(self.ensure_default_session())
        tmux_watch = asyncio.create_task(self.ctx.terminals.watch())
        owner_lookup = asyncio.create_task(self.resolver.run()) if self.resolver else None
        credentials = self.ctx.credentials
        renewing = asyncio.create_task(credentials.run()) if credentials else None
        announcing = asyncio.create_task(announcer_for(self.ctx).run())
        assert self.ctx.polls is not None
        expiry = PeriodicCallback(self.expire_idle_polls, 10_000)
        expiry.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.stopping.wait()
        log.info("stopping")
        expiry.stop()
        default_session.cancel()
        tmux_watch.cancel()
        announcing.cancel()
        for task in (owner_lookup, renewing):
            if task is not None:
                task.cancel()
        self.server.stop()
        await self.ctx.close_all()
        await self.server.close_all_connections()
        self.ctx.executor.shutdown(wait=False, cancel_futures=True)


def main(settings: Settings) -> int:
    state.ensure_dir(settings.state_dir)
    asyncio.run(Gateway(settings).run())
    return 0


if __name__ == "__main__":
    entry.run("gateway", main)
