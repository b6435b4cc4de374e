"""Admission: what the gateway refuses so one machine stays alive (README, "Limits").

New sessions and agent windows are refused with 429 past a count or while the container's memory
(services.memory) is under a floor sized from the agent's footprint; terminal connections (each a
`tmux attach` process) are capped per session and in total. The messages go to the user as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from services.limits import DEFAULT_AGENT_MEMORY_MB, Limits
from services.memory import MIB, MemoryProbe, MemoryStatus, MemoryUnreadable
from services.setup.registry import Agent

log = logging.getLogger(__name__)

CLOSE_HINT = "close a session or an agent"


class LimitReached(Exception):
    """A limit refuses the request (HTTP 429, or WebSocket close 4429); the text is for the user."""


class Admission:
    """Decides whether a new session or agent window may start. `starting()` holds a lock from the
    check until the caller has created it, so two requests at once cannot both take the last place."""

    def __init__(self, limits: Limits, probe: MemoryProbe) -> None:
        self.limits = limits
        self.probe = probe
        self._lock = asyncio.Lock()
        self._unreadable_logged = False

    def memory(self) -> MemoryStatus | None:
        """The container's memory now; None (logged once) when it cannot be read: nothing is refused."""
        try:
            return self.probe.read()
        except MemoryUnreadable as exc:
            if not self._unreadable_logged:
                log.warning("memory guard off: %s", exc)
                self._unreadable_logged = True
            return None

    def memory_json(self) -> dict[str, Any] | None:
        status = self.memory()
        return status.to_json(self.limits.memory_warn_percent) if status else None

    @contextlib.asynccontextmanager
    async def starting(self) -> AsyncIterator[None]:
        async with self._lock:
            yield

    def check_session_count(self, sessions: int) -> None:
        if sessions >= self.limits.max_sessions:
            raise LimitReached(f"session limit ({self.limits.max_sessions}) reached: close one")

    def check_window_count(self, session: str, windows: int) -> None:
        if windows >= self.limits.max_windows:
            raise LimitReached(f"window limit ({self.limits.max_windows}) reached in {session}: close one")

    def check_memory(self, agent: Agent | None = None) -> None:
        """Refuse while less than the floor (plus the agent's footprint) is available."""
        floor = self.limits.memory_floor_mb
        if floor == 0:
            return
        status = self.memory()
        if status is None:
            return
        available = status.available // MIB
        if agent is None:
            if available < floor:
                raise LimitReached(
                    f"not enough memory for a new session: {available} MiB available, {floor} MiB must "
                    f"stay free; {CLOSE_HINT}"
                )
            return
        footprint = agent.memory_mb or DEFAULT_AGENT_MEMORY_MB
        if available < footprint + floor:
            raise LimitReached(
                f"not enough memory to start {agent.title}: {available} MiB available, it needs "
                f"{footprint + floor} MiB ({footprint} for the agent, {floor} kept free); {CLOSE_HINT}"
            )


class ConnectionSlots:
    """Open terminal connections, per session and in all; a slot is held from before the attach until
    the channel closes (either transport)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.per_session: Counter[str] = Counter()
        self.total = 0

    def take(self, session: str) -> Callable[[], None]:
        """A slot for one connection to `session`, or LimitReached; returns its (idempotent) release."""
        if self.total >= self.limits.max_connections:
            raise LimitReached(
                f"too many terminal connections ({self.limits.max_connections}) open: close some tabs"
            )
        if self.per_session[session] >= self.limits.max_connections_per_session:
            raise LimitReached(
                f"too many terminal connections to {session} ({self.limits.max_connections_per_session} "
                "open): close a tab"
            )
        self.per_session[session] += 1
        self.total += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.total -= 1
            self.per_session[session] -= 1
            if self.per_session[session] <= 0:
                del self.per_session[session]

        return release
