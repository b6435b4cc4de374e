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
from services.setup.registry import Registry
from services.tmux import TmuxSessions

if TYPE_CHECKING:
    from services.gateway.longpoll import PollRegistry
    from services.gateway.terminal import TerminalChannel, TmuxAttachment

T = TypeVar("T")


@dataclass
class GatewayContext:
    settings: Settings
    sessions: TmuxSessions
    policy: AccessPolicy
    # Environment for `tmux attach` clients (not for shells: those inherit the tmux server's).
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

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call (libtmux, file I/O) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    async def close_all(self, timeout: float = 3.0) -> None:
        """Close every terminal channel and wait (bounded) for the attach clients to be reaped."""
        for channel in list(self.channels):
            channel.close()
        self.channels.clear()
        if self.polls is not None:
            self.polls.close_all()
        waits = [asyncio.create_task(a.exited.wait()) for a in list(self.attachments)]
        if waits:
            await asyncio.wait(waits, timeout=timeout)
            for task in waits:
                task.cancel()
