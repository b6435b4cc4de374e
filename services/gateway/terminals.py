"""Every session the page can open, whichever backend owns it, and whether tmux can be had.

Normally every shell lives in tmux. When there is no working tmux binary, or its server has not
answered for GRACE_SECONDS, the gateway is *degraded*: new sessions are shells on its own PTYs
(services/gateway/ptys.py). Once tmux answers again new sessions go to tmux, while degraded shells
keep running until they exit. Handlers and channels see one interface; only this class decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from services import tmux_install
from services.config import Settings
from services.gateway import protocol
from services.gateway.ptys import PtySessions
from services.gateway.scrolling import PaneScroller
from services.gateway.terminal import Attachment, TmuxTerminals
from services.platform_log import announce, resolved
from services.tmux import SessionExists, SessionInfo, SessionNotFound, TmuxError, server_answers

log = logging.getLogger(__name__)

TMUX = "tmux"
DEGRADED = "degraded"
# tmux restarting under supervisord answers again well within this; longer means it is not coming.
GRACE_SECONDS = 10.0
WATCH_SECONDS = 1.0
LOST = "the terminal runs without tmux (shells end when the web process restarts)"
SERVER_DOWN = "the tmux server is not running (scripts/ctl status tmux)"
SERVER_FIX = 'retry "tmux" on the page, or scripts/ctl start tmux'


@dataclass(frozen=True)
class WindowInfo:
    """Where a launched agent runs: a tmux window, or (degraded) a session of its own."""

    session: str
    index: int
    name: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Terminals:
    """The router between the tmux backend and the degraded PTY backend (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        tmux: TmuxTerminals,
        ptys: PtySessions,
        run_blocking: Callable[..., Awaitable[Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.tmux = tmux
        self.ptys = ptys
        self._run_blocking = run_blocking
        self._clock = clock
        self.mode = TMUX
        self.why = ""
        self.fix = ""
        self._down_since: float | None = None
        self.check()

    @property
    def degraded(self) -> bool:
        return self.mode == DEGRADED

    @property
    def reason(self) -> str:
        """Why tmux is missing and what to do, for /health and the page ("" with tmux)."""
        return f"{self.why}; {self.fix}" if self.degraded else ""

    def check(self) -> None:
        """Decide the mode now: a missing binary degrades at once, a silent server after the grace."""
        binary = shutil.which(self.settings.tmux_bin)
        if binary and server_answers(self.settings.tmux_socket):
            self._down_since = None
            self._set(TMUX, "", "")
            return
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        if not binary:
            self._set(DEGRADED, *self._missing_binary())
        elif self.degraded or now - self._down_since >= GRACE_SECONDS:
            self._set(DEGRADED, SERVER_DOWN, SERVER_FIX)

    def _missing_binary(self) -> tuple[str, str]:
        record = tmux_install.read_record(self.settings)
        if record is not None and not record.ok:
            return record.message, record.fix
        return f"no tmux at {self.settings.tmux_bin}", tmux_install.FIX

    def _set(self, mode: str, why: str, fix: str) -> None:
        before = self.mode
        self.mode, self.why, self.fix = mode, why, fix
        if mode == DEGRADED:
            # Keyed: said once, and again only when the reason changes (a retry that failed otherwise).
            announce(f"tmux unavailable: {why}; {LOST}", fix, key="terminal")
        elif before == DEGRADED:
            log.info("tmux answers: new sessions live in tmux")
            resolved("terminal", "tmux is up: new sessions live in tmux (earlier shells run until they exit)")

    async def watch(self) -> None:
        """Keep the mode current (runs for the gateway's lifetime)."""
        while True:
            self.check()
            await asyncio.sleep(WATCH_SECONDS)

    # --- REST ------------------------------------------------------------------------------------

    async def _tmux(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A tmux call; without tmux (degraded) a session tmux cannot be asked about does not exist."""
        try:
            return await self._run_blocking(fn, *args)
        except (TmuxError, OSError) as exc:  # OSError: no binary to run at all
            if self.degraded:
                raise SessionNotFound(str(args[0]) if args else "?") from None
            raise exc if isinstance(exc, TmuxError) else TmuxError(f"cannot run tmux: {exc}") from None

    async def list_sessions(self) -> list[SessionInfo]:
        ptys = self.ptys.list_sessions()
        try:
            in_tmux: list[SessionInfo] = await self._run_blocking(self.tmux.sessions.list_sessions)
        except (TmuxError, OSError):
            if not (self.degraded or ptys):
                raise
            in_tmux = []
        return ptys + [s for s in in_tmux if s.name not in self.ptys]

    async def next_free_name(self, prefix: str = "shell") -> str:
        taken = {s.name for s in await self.list_sessions()}
        n = 1
        while f"{prefix}-{n}" in taken:
            n += 1
        return f"{prefix}-{n}"

    async def create(
        self, name: str | None = None, cols: int = 120, rows: int = 36, command: str | None = None
    ) -> SessionInfo:
        if self.degraded:
            self.check()  # a tmux that has just come up takes this session, not the next one
        if name is None:
            name = await self.next_free_name()
        if name in self.ptys:
            raise SessionExists(name)
        if self.degraded:
            return self.ptys.create(name, cols, rows, command)
        info: SessionInfo = await self._run_blocking(self.tmux.sessions.create, name, cols, rows, command)
        return info

    async def ensure(self, name: str) -> None:
        """The session exists afterwards (created in the current mode if needed)."""
        try:
            await self.get(name)
        except SessionNotFound:
            with contextlib.suppress(SessionExists):  # created meanwhile: just as good
                await self.create(name)

    async def get(self, name: str) -> SessionInfo:
        if name in self.ptys:
            return self.ptys.get(name)
        info: SessionInfo = await self._tmux(self.tmux.sessions.get, name)
        return info

    async def rename(self, name: str, new_name: str) -> SessionInfo:
        """Rename in whichever backend holds `name`; a name taken in either backend is a clash."""
        if new_name != name and (new_name in self.ptys or await self.exists(new_name)):
            raise SessionExists(new_name)
        if name in self.ptys:
            return self.ptys.rename(name, new_name)
        info: SessionInfo = await self._tmux(self.tmux.sessions.rename, name, new_name)
        return info

    async def kill(self, name: str) -> None:
        if name in self.ptys:
            await self.ptys.kill(name)
        else:
            await self._tmux(self.tmux.sessions.kill, name)

    async def new_window(self, name: str, window_name: str, command: str) -> WindowInfo:
        if name in self.ptys:
            # A PTY has no windows: the agent gets a session (a tab) of its own, in tmux if it is up.
            info = await self.create(await self.next_free_name(window_name), command=command)
            return WindowInfo(info.name, 0, window_name)
        index: int = await self._tmux(self.tmux.sessions.new_window, name, window_name, command)
        return WindowInfo(name, index, window_name)

    # --- terminal channels (TerminalBackend) -----------------------------------------------------

    async def attach(
        self,
        session: str,
        size: protocol.Resize,
        on_replay: Callable[[bytes], None],
        on_output: Callable[[bytes], None],
        on_closed: Callable[[], None],
    ) -> Attachment:
        if session in self.ptys:
            return await self.ptys.attach(session, size, on_replay, on_output, on_closed)
        if self.degraded:
            raise SessionNotFound(session)
        return await self.tmux.attach(session, size, on_replay, on_output, on_closed)

    async def exists(self, session: str) -> bool:
        if session in self.ptys:
            return True
        try:
            return await self.tmux.exists(session)
        except (TmuxError, OSError) as exc:
            if self.degraded:
                return False
            raise TmuxError(str(exc)) from None

    def scroller(
        self, session: str, write: Callable[[bytes], None], report: Callable[[dict[str, Any]], None]
    ) -> PaneScroller | None:
        # A degraded shell's history is the page's own (xterm.js scrollback).
        return None if session in self.ptys or self.degraded else self.tmux.scroller(session, write, report)

    async def close_all(self) -> None:
        await self.ptys.close_all()
