"""Terminal channels: one client connection to one session, over whichever backend owns it.

With tmux (the normal case) a channel runs one `tmux attach` client in a PTY per browser connection:
the PTY belongs to this process, the shell to the tmux server, so if this process dies the attach
client exits and the shell lives on. Without tmux (degraded mode) the shell's own PTY lives here
(services/gateway/ptys.py). A channel is transport-neutral (the WebSocket and long-poll handlers
each supply a Sink) and backend-neutral (TerminalBackend).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from tornado.ioloop import IOLoop
from tornado.process import Subprocess

from services.gateway import protocol
from services.gateway.ptyio import PtyMaster, spawn_on_pty
from services.gateway.scrolling import PaneScroller
from services.tmux import PaneSnapshot, SessionNotFound, TmuxError, TmuxSessions

log = logging.getLogger(__name__)

MAX_HELD_INPUT = 64 * 1024  # keys typed while `tmux attach` starts (a paste at most)


class Sink(Protocol):
    """Where a channel sends what the terminal says; implemented per transport."""

    def send_json(self, message: dict[str, Any]) -> None: ...

    def send_output(self, data: bytes) -> None: ...

    def backed_up(self) -> bool: ...

    def close(self, code: int, reason: str) -> None: ...


def attach_environment(base: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("TMUX", "TMUX_PANE")}
    env["TERM"] = "xterm-256color"
    env.setdefault("LANG", "C.UTF-8")
    return env


class Attachment(Protocol):
    """One client's view of a session's terminal, as a backend hands it to a channel."""

    def write(self, data: bytes) -> None:
        """Input for the shell; OverflowError when the terminal is not taking it."""

    def resize(self, size: protocol.Resize) -> None: ...

    def set_reading(self, reading: bool) -> None:
        """Flow control: False stops passing output on (nothing is lost, the producer waits)."""

    def close(self) -> None:
        """Detach this client; the session lives on. Idempotent; calls the on_closed callback."""


class TerminalBackend(Protocol):
    """What a channel needs from whatever owns the session's shell."""

    async def attach(
        self,
        session: str,
        size: protocol.Resize,
        on_replay: Callable[[bytes], None],
        on_output: Callable[[bytes], None],
        on_closed: Callable[[], None],
    ) -> Attachment:
        """Call on_replay once (recent output that repaints the screen), then on_output as the
        terminal speaks, and on_closed when this attachment ends. Raises SessionNotFound, TmuxError."""
        ...

    async def exists(self, session: str) -> bool:
        """Whether the session still runs (after an attachment ended); TmuxError if unknowable."""
        ...

    def scroller(
        self, session: str, write: Callable[[bytes], None], report: Callable[[dict[str, Any]], None]
    ) -> PaneScroller | None:
        """Scrolling through the session's tmux history; None where the page keeps its own."""
        ...


class TmuxAttachment:
    """A `tmux attach-session` process on a PTY master registered with the IOLoop.

    Reading can be paused (flow control) without losing anything: unread output waits in the
    kernel, and once the PTY fills, tmux itself throttles this client and redraws later.
    """

    def __init__(
        self,
        sessions: TmuxSessions,
        session: str,
        size: protocol.Resize,
        on_output: Callable[[bytes], None],
        on_closed: Callable[[], None],
        env: Mapping[str, str],
        live: set[TmuxAttachment],
    ) -> None:
        """`live` holds every attachment whose process has not exited yet (for clean shutdown)."""
        self._sessions = sessions
        self._live = live
        self._session = session
        self._size = size
        self._on_output = on_output
        self._on_closed = on_closed
        self._env = attach_environment(env)
        self._master: PtyMaster | None = None
        self._proc: Subprocess | None = None
        self._closed = False
        self._held_input: bytearray | None = bytearray()  # until tmux has drawn (see _output_arrived)
        self.exited = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        argv = [self._sessions.tmux_bin, "-u", "-S", self._sessions.socket_path]
        # Raw before tmux starts: a Ctrl-C the page sends while tmux is still starting would
        # otherwise be the line discipline's SIGINT and kill the attach client.
        self._proc, master = spawn_on_pty(
            [*argv, "attach-session", "-t", f"={self._session}"],
            self._size.cols,
            self._size.rows,
            self._env,
            raw=True,
        )
        self._master = PtyMaster(master, self._session, self._output_arrived, self.close)
        self._live.add(self)
        self._proc.set_exit_callback(self._on_process_exit)

    def _output_arrived(self, data: bytes) -> None:
        # tmux's first redraw means it has the terminal in its own mode and is attached: only now
        # can input be taken as keys, so what came before is released here.
        if self._held_input is not None:
            held, self._held_input = bytes(self._held_input), None
            if held and self._master is not None and not self._closed:
                self._master.write(held)
        self._on_output(data)

    def write(self, data: bytes) -> None:
        if self._held_input is not None:
            if len(self._held_input) + len(data) > MAX_HELD_INPUT:
                raise OverflowError("the terminal is still starting; type again in a moment")
            self._held_input += data
            return
        if self._master is not None and not self._closed:
            self._master.write(data)

    def resize(self, size: protocol.Resize) -> None:
        self._size = size
        if self._master is not None and not self._closed:
            self._master.resize(size.cols, size.rows)

    def set_reading(self, reading: bool) -> None:
        if self._master is not None and not self._closed:
            self._master.set_reading(reading)

    def close(self) -> None:
        """Stop the attach client; the tmux session itself is untouched. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._master is not None:
            self._master.close()
        # Closing the master hangs the client up; SIGTERM covers a client ignoring SIGHUP.
        if self._proc is not None and self._proc.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGTERM)
        self._on_closed()

    def _on_process_exit(self, returncode: int) -> None:
        self.exited.set()
        self._live.discard(self)
        if not self._closed:
            IOLoop.current().add_callback(self.close)


def render_replay(snapshot: PaneSnapshot) -> bytes:
    """Bytes that repaint recent history and the screen, with colours, on a reset xterm.js.

    capture-pane emits only text and SGR, so nothing here can make the browser answer a terminal
    query into the shell.
    """
    lines = snapshot.content.rstrip(b"\n").split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    body = b"\r\n".join(line + b"\x1b[0m" for line in lines)
    # Leave the screen blank below; tmux's attach redraw places everything exactly.
    return b"\x1b[0m" + body + b"\r\n" + f"\x1b[{snapshot.cursor_y + 1};{snapshot.cursor_x + 1}H".encode()


class TmuxTerminals:
    """The tmux backend: replay from capture-pane, then one `tmux attach` per attachment."""

    def __init__(
        self,
        sessions: TmuxSessions,
        run_blocking: Callable[..., Awaitable[Any]],
        env: Mapping[str, str],
        live: set[TmuxAttachment],
    ) -> None:
        self.sessions = sessions
        self._run_blocking = run_blocking
        self._env = env
        self._live = live

    async def attach(
        self,
        session: str,
        size: protocol.Resize,
        on_replay: Callable[[bytes], None],
        on_output: Callable[[bytes], None],
        on_closed: Callable[[], None],
    ) -> TmuxAttachment:
        snapshot = await self._run_blocking(self.sessions.capture, session)
        on_replay(render_replay(snapshot))
        # Started only now: tmux's attach redraw must follow the replay, never precede it.
        attachment = TmuxAttachment(self.sessions, session, size, on_output, on_closed, self._env, self._live)
        attachment.start()
        return attachment

    async def exists(self, session: str) -> bool:
        return bool(await self._run_blocking(self.sessions.exists, session))

    def scroller(
        self, session: str, write: Callable[[bytes], None], report: Callable[[dict[str, Any]], None]
    ) -> PaneScroller:
        return PaneScroller(self.sessions, session, self._run_blocking, write, report)


class TerminalChannel:
    """One client connection to one session: hello, replay, then live output with flow control.

    Owns its Attachment. `unacked` counts output bytes sent and not yet acknowledged; reading
    the terminal pauses above HIGH_WATER or while the sink is backed up and resumes below LOW_WATER.
    """

    def __init__(
        self,
        backend: TerminalBackend,
        session: str,
        size: protocol.Resize,
        sink: Sink,
        transport: str,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        """`release` is called once when the channel closes (its connection slot, limits.py)."""
        self.session = session
        self.transport = transport
        self._backend = backend
        self._size = size
        self._sink = sink
        self._release = release
        self.unacked = 0
        self.paused = False
        self.closed = False
        # When the client last typed: a `download` goes to the connection the command was typed in.
        self.last_input = 0.0
        self._attachment: Attachment | None = None
        self._scroller = backend.scroller(session, self._write_now, sink.send_json)

    async def open(self) -> bool:
        """Send hello and the replay, then attach. False (and the sink closed) if there is no session."""
        where = protocol.HISTORY_TMUX if self._scroller else protocol.HISTORY_LOCAL
        self._sink.send_json(protocol.hello(self.session, self.transport, where))
        try:
            attachment = await self._backend.attach(
                self.session, self._size, self._send_replay, self._send_output, self._on_attachment_closed
            )
        except SessionNotFound as exc:
            self._finish(protocol.CLOSE_NO_SESSION, str(exc))
            return False
        except TmuxError as exc:
            self._finish(protocol.CLOSE_TERMINAL_LOST, str(exc))
            return False
        if self.closed:  # the client left while the replay was being prepared
            attachment.close()
            return False
        self._attachment = attachment
        self.update_flow()
        return True

    def _send_replay(self, data: bytes) -> None:
        if self.closed:
            return
        self._send_output(data)
        self._sink.send_json({"type": protocol.READY})

    def _send_output(self, data: bytes) -> None:
        if self.closed:
            return
        self.unacked += len(data)
        self._sink.send_output(data)
        self.update_flow()

    def update_flow(self) -> None:
        """Re-evaluate pausing; sinks call this when their backlog drains."""
        if self._attachment is None or self.closed:
            return
        backed_up = self._sink.backed_up()
        if not self.paused and (self.unacked > protocol.HIGH_WATER or backed_up):
            self.paused = True
        elif self.paused and self.unacked <= protocol.LOW_WATER and not backed_up:
            self.paused = False
        self._attachment.set_reading(not self.paused)

    def handle(self, message: protocol.ClientMessage) -> None:
        if self.closed:
            return
        match message:
            case protocol.Input(data):
                self.write(data)
            case protocol.Resize() as size:
                self._size = size
                if self._attachment is not None:
                    self._attachment.resize(size)
            case protocol.Ack(count):
                self.unacked = max(0, self.unacked - count)
                self.update_flow()
            case protocol.Ping():
                self._sink.send_json({"type": protocol.PONG})
            case protocol.Scroll() as request:
                if self._scroller is None:
                    no_tmux = "scrolling tmux history needs tmux; this shell has none"
                    self._sink.send_json(protocol.error(no_tmux))
                else:
                    self._scroller.scroll(request)

    def write(self, data: bytes) -> None:
        if self._attachment is None or self.closed:
            return
        self.last_input = time.monotonic()
        if self._scroller is not None:
            self._scroller.write(data)  # keeps input in order with scrolling (scrolling.py)
        else:
            self._write_now(data)

    def send(self, message: dict[str, Any]) -> None:
        """A message of the gateway's own for this client (e.g. `download`)."""
        if not self.closed:
            self._sink.send_json(message)

    def _write_now(self, data: bytes) -> None:
        if self._attachment is None or self.closed:
            return
        try:
            self._attachment.write(data)
        except OverflowError as exc:
            self._sink.send_json(protocol.error(str(exc)))

    def _on_attachment_closed(self) -> None:
        if self.closed:
            return
        IOLoop.current().add_callback(self._report_end)

    async def _report_end(self) -> None:
        try:
            alive = await self._backend.exists(self.session)
        except TmuxError:
            # tmux is restarting (or gone): the client retries and learns which.
            self._sink.send_json(protocol.error("the tmux server is not running"))
            self._finish(protocol.CLOSE_TERMINAL_LOST, "tmux server not running")
            return
        if alive:
            reason = "the terminal client stopped; reconnect to reattach"
            self._sink.send_json(protocol.error(reason))
            self._finish(protocol.CLOSE_TERMINAL_LOST, reason)
        else:
            self._sink.send_json({"type": protocol.EXIT})
            self._finish(protocol.CLOSE_NORMAL, "session ended")

    def _finish(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._release()
        if code == protocol.CLOSE_NO_SESSION:
            self._sink.send_json(protocol.error(reason))
        self._sink.close(code, reason)
        if self._scroller is not None:
            self._scroller.close()
        if self._attachment is not None:
            self._attachment.close()

    def close(self) -> None:
        """The client went away: stop the attach client. Idempotent; the session lives on."""
        if self.closed:
            return
        self.closed = True
        if self._scroller is not None:
            self._scroller.close()
        self._release()
        if self._attachment is not None:
            self._attachment.close()
