"""One channel's scrolling through tmux's history, kept in order with its typed input.

Scrolling puts the pane in copy mode, where typed keys would be eaten as copy-mode commands
(`echo hi` became `hi: command not found`). So input that follows a scroll, or a mouse event
(a drag in tmux starts copy mode too), first leaves copy mode; input arriving meanwhile waits
behind it in order, and nothing is dropped. Other input goes straight through: no tmux call
per keystroke.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from services.gateway import history, protocol
from services.tmux import SessionNotFound, TmuxError, TmuxSessions

log = logging.getLogger(__name__)

# SGR (1006) and X10 mouse reports, as xterm.js sends them while tmux asks for the mouse.
_MOUSE = re.compile(rb"\x1b\[<\d+;\d+;\d+[Mm]|\x1b\[M")


class PaneScroller:
    def __init__(
        self,
        sessions: TmuxSessions,
        session: str,
        run_blocking: Callable[..., Awaitable[Any]],
        write: Callable[[bytes], None],
        report: Callable[[dict[str, Any]], None],
    ) -> None:
        """`write` passes input on to the terminal; `report` sends the page a message."""
        self._sessions = sessions
        self._session = session
        self._run_blocking = run_blocking
        self._write = write
        self._report = report
        self._queue: deque[protocol.Scroll | bytes] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # questions in flight (kept from the GC)
        self._maybe_in_copy_mode = False
        self._closed = False

    def write(self, data: bytes) -> None:
        busy = bool(self._queue) or self._worker is not None
        if busy or (self._maybe_in_copy_mode and not _MOUSE.search(data)):
            self._enqueue(data)
            return
        if _MOUSE.search(data):
            self._maybe_in_copy_mode = True
        self._write(data)

    def scroll(self, request: protocol.Scroll) -> None:
        if request.lines == 0 and request.to is None:
            # Only a question (the scrollbar, while output flows): typed keys must not wait behind it.
            self._tasks.add(task := asyncio.get_running_loop().create_task(self._tell()))
            task.add_done_callback(self._tasks.discard)
            return
        self._enqueue(request)

    async def _tell(self) -> None:
        try:
            where = await self._run_blocking(history.state, self._sessions, self._session)
        except (TmuxError, SessionNotFound) as exc:
            self._report(protocol.error(f"cannot read the history's position: {exc}"))
            return
        if not self._closed:
            self._report({"type": protocol.HISTORY, **where.to_json()})

    def close(self) -> None:
        self._closed = True
        self._queue.clear()
        if self._worker is not None:
            self._worker.cancel()

    def _enqueue(self, item: protocol.Scroll | bytes) -> None:
        if self._closed:
            return
        self._queue.append(item)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue and not self._closed:
                item = self._queue.popleft()
                if isinstance(item, bytes):
                    await self._input(item)
                else:
                    await self._move(item)
        finally:
            self._worker = None

    async def _input(self, data: bytes) -> None:
        if _MOUSE.search(data):
            self._maybe_in_copy_mode = True
        elif self._maybe_in_copy_mode:
            try:
                where = await self._run_blocking(history.leave_copy_mode, self._sessions, self._session)
            except (TmuxError, SessionNotFound) as exc:
                log.warning("could not leave copy mode in %s before input: %s", self._session, exc)
            else:
                self._report({"type": protocol.HISTORY, **where.to_json()})  # the scrollbar follows
            self._maybe_in_copy_mode = False
        if not self._closed:
            self._write(data)

    async def _move(self, request: protocol.Scroll) -> None:
        # Wheel notches pile up while tmux answers: one tmux call for all of them.
        lines = request.lines
        while request.to is None and self._queue and isinstance(self._queue[0], protocol.Scroll):
            if self._queue[0].to is not None:
                break
            following = self._queue.popleft()
            assert isinstance(following, protocol.Scroll)
            lines += following.lines
        try:
            if request.to is not None:
                where = await self._run_blocking(history.goto, self._sessions, self._session, request.to)
            else:
                where = await self._run_blocking(history.scroll, self._sessions, self._session, lines)
        except (TmuxError, SessionNotFound) as exc:
            self._report(protocol.error(f"cannot scroll: {exc}"))
            return
        if where.app_mouse and lines and not self._closed:
            # The program reads the mouse (an editor, an agent's UI): it gets wheel reports, one
            # per notch, which tmux passes on to the pane.
            button = 64 if lines > 0 else 65
            self._write(f"\x1b[<{button};1;1M".encode() * max(1, round(abs(lines) / 3)))
        self._maybe_in_copy_mode = self._maybe_in_copy_mode or where.in_mode
        self._report({"type": protocol.HISTORY, **where.to_json()})
