"""Everything a gateway handler needs, built once per application and injected via initialize()."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from services.config import Settings
from services.gateway.auth import AccessPolicy
from services.gateway.limits import Admission, ConnectionSlots
from services.gateway.ptys import PtySessions
from services.gateway.terminal import TerminalChannel, TmuxAttachment, TmuxTerminals
from services.gateway.terminals import Terminals
from services.memory import MemoryProbe
from services.setup.registry import Registry
from services.shell_env import shell_environment, shell_secrets
from services.tmux import TmuxSessions

if TYPE_CHECKING:
    from services.credentials.manager import CredentialManager
    from services.gateway.assets import StaticAssets
    from services.gateway.longpoll import PollRegistry

T = TypeVar("T")


@dataclass
class GatewayContext:
    settings: Settings
    sessions: TmuxSessions
    policy: AccessPolicy
    # Environment for `tmux attach` clients; shells in tmux inherit the tmux server's, degraded
    # shells (no tmux) get services.shell_env's environment built from it.
    attach_env: Mapping[str, str]
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="tmux")
    )
    channels: set[TerminalChannel] = field(default_factory=set)
    attachments: set[TmuxAttachment] = field(default_factory=set)
    polls: PollRegistry | None = None
    # agents.yaml, for launchers; None with the reason when it does not load.
    registry: Registry | None = None
    registry_error: str = ""
    # The page's files by content version (assets.py); make_app fills it in.
    assets: StaticAssets | None = None
    # The owner's workspace credential (Apps mode without a deploy PAT); None in local mode.
    credentials: CredentialManager | None = None
    # Every session, in tmux or (degraded) on the gateway's own PTYs: what handlers talk to.
    terminals: Terminals = field(init=False)
    # README, "Limits": new sessions and agent windows, and terminal connections.
    admission: Admission = field(init=False)
    connections: ConnectionSlots = field(init=False)

    def __post_init__(self) -> None:
        limits = self.settings.limits
        self.admission = Admission(limits, MemoryProbe(limits.memory_root))
        self.connections = ConnectionSlots(limits)
        tmux = TmuxTerminals(self.sessions, self.run_blocking, self.attach_env, self.attachments)
        shells_env = shell_environment(self.settings, self.attach_env) | shell_secrets(self.settings)
        ptys = PtySessions(shells_env, self.settings.projects_dir, self.run_blocking)
        self.terminals = Terminals(self.settings, tmux, ptys, self.run_blocking)

    def open_channels(self) -> list[TerminalChannel]:
        """Every open terminal connection, WebSocket and long-poll."""
        polled = self.polls.channels() if self.polls is not None else []
        return [c for c in [*self.channels, *polled] if not c.closed]

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call (libtmux, file I/O) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    async def close_all(self, timeout: float = 3.0) -> None:
        """Close every terminal channel, wait (bounded) for the attach clients to be reaped, and
        kill the degraded shells (they cannot outlive this process)."""
        for channel in list(self.channels):
            channel.close()
        self.channels.clear()
        if self.polls is not None:
            self.polls.close_all()
        await self.terminals.close_all()
        waits = [asyncio.create_task(a.exited.wait()) for a in list(self.attachments)]
        if waits:
            await asyncio.wait(waits, timeout=timeout)
            for task in waits:
                task.cancel()
