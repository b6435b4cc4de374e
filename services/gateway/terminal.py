"""Terminal channels: one `tmux attach` client in a PTY per browser connection.

The PTY belongs to this process; the shell belongs to the tmux server. If this process dies the
attach client loses its PTY and exits, and the shell lives on. A channel is transport-neutral: the
WebSocket and long-poll handlers each supply a Sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import math
import os
import signal
import struct
import termios
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tornado.ioloop import IOLoop
from tornado.process import Subprocess

from services.gateway import protocol
from services.tmux import PaneSnapshot, SessionNotFound, TmuxError, TmuxSessions

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
MAX_PENDING_INPUT = 4 * 1024 * 1024
# A flood is gathered into fewer, larger frames: while the bytes read, decaying with a time constant
# of FLOOD_DECAY_SECONDS, exceed FLOOD_BYTES, the PTY rests BATCH_DELAY after each read, so the
# next read takes all that piled up. tmux writes a flood in pieces of ~700 bytes, and a frame for
# each cost more CPU than tmux's own work. Each read counts as at least MIN_READ_BYTES: a client
# that falls behind gets a stream of tiny cursor moves from tmux (it skips the text, then redraws),
# thousands of reads a second. The decay outlasts tmux's 100 ms pauses between those redraws.
# Output within INPUT_GRACE_SECONDS of input answers the user (an echo, an editor) and is never held.
FLOOD_DECAY_SECONDS = 0.25
FLOOD_BYTES = 32 * 1024
MIN_READ_BYTES = 256
BATCH_DELAY = 0.008
INPUT_GRACE_SECONDS = 0.05
MAX_FRAME = 256 * 1024


class FloodMeter:
    """Decides when a terminal's output is a flood to gather, not an answer to wait on.

    Flooding: reads (each at least MIN_READ_BYTES), decaying with time constant `decay`, add up to
    more than `limit` bytes; it lasts until they fall below an eighth of that, because gathered
    reads are fewer and would otherwise end it while the flood goes on. An answer: output within
    INPUT_GRACE_SECONDS of the user's input.
    """

    def __init__(self, decay: float = FLOOD_DECAY_SECONDS, limit: int = FLOOD_BYTES) -> None:
        self._decay = decay
        self._limit = limit
        self._level = 0.0
        self._at = float("-inf")
        self._last_input = float("-inf")
        self.flooding = False

    def input_written(self, now: float) -> None:
        self._last_input = now

    def should_rest(self, size: int, now: float) -> bool:
        """Count a read of `size` bytes at `now`; True if the PTY should rest before the next read."""
        self._level = self._level * math.exp((self._at - now) / self._decay) + max(size, MIN_READ_BYTES)
        self._at = now
        if self._level > self._limit:
            self.flooding = True
        elif self._level < self._limit / 8:
            self.flooding = False
        return self.flooding and now - self._last_input > INPUT_GRACE_SECONDS


class Sink(Protocol):
    """Where a channel sends what the terminal says; implemented per transport."""

    def send_json(self, message: dict[str, Any]) -> None: ...

    def send_output(self, data: bytes) -> None: ...

    def backed_up(self) -> bool: ...

    def close(self, code: int, reason: str) -> None: ...


def _take_controlling_tty() -> None:
    # Runs in the child after setsid(): make the PTY (fd 0) its controlling terminal so the
    # kernel delivers SIGWINCH to tmux on every TIOCSWINSZ.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def attach_environment(base: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("TMUX", "TMUX_PANE")}
    env["TERM"] = "xterm-256color"
    env.setdefault("LANG", "C.UTF-8")
    return env


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
        self._fd = -1
        self._proc: Subprocess | None = None
        self._pending_input = bytearray()
        self._reading = True
        self._resting: object | None = None  # the IOLoop timeout that ends a rest
        self._flood = FloodMeter()
        self._closed = False
        self._loop = IOLoop.current()
        self.exited = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        master, slave = os.openpty()
        try:
            set_winsize(slave, self._size.cols, self._size.rows)
            os.set_blocking(master, False)
            self._proc = Subprocess(
                [
                    self._sessions.tmux_bin,
                    "-u",
                    "-S",
                    self._sessions.socket_path,
                    "attach-session",
                    "-t",
                    f"={self._session}",
                ],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=_take_controlling_tty,
                env=self._env,
                close_fds=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self._fd = master
        self._live.add(self)
        self._proc.set_exit_callback(self._on_process_exit)
        self._loop.add_handler(master, self._on_events, IOLoop.READ)

    def _events(self) -> int:
        events = IOLoop.READ if self._reading and self._resting is None else 0
        if self._pending_input:
            events |= IOLoop.WRITE
        return events | IOLoop.ERROR

    def _on_events(self, fd: int, events: int) -> None:
        if events & IOLoop.WRITE:
            self._flush_input()
        if events & IOLoop.READ or (events & IOLoop.ERROR and self._reading):
            data, ended = self._read_available(fd)
            if data:
                self._on_output(data)
            if ended:
                self.close()
                return
            if data and not self._closed and self._flood.should_rest(len(data), self._loop.time()):
                self._rest()

    def _read_available(self, fd: int) -> tuple[bytes, bool]:
        """Everything the PTY holds now, up to MAX_FRAME; and whether the other side is gone."""
        chunks: list[bytes] = []
        size = 0
        while size < MAX_FRAME:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO = the other side of the PTY is gone
                    log.warning("reading the terminal of %s failed: %s", self._session, exc)
                return b"".join(chunks), True
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), False

    def _rest(self) -> None:
        self._resting = self._loop.call_later(BATCH_DELAY, self._end_rest)
        self._loop.update_handler(self._fd, self._events())

    def _end_rest(self) -> None:
        self._resting = None
        if not self._closed:
            self._loop.update_handler(self._fd, self._events())

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        if len(self._pending_input) + len(data) > MAX_PENDING_INPUT:
            raise OverflowError("the terminal is not reading input fast enough; input dropped")
        self._flood.input_written(self._loop.time())
        self._pending_input += data
        self._flush_input()

    def _flush_input(self) -> None:
        while self._pending_input and not self._closed:
            try:
                written = os.write(self._fd, self._pending_input)
            except BlockingIOError:
                break
            except OSError:
                self.close()
                return
            del self._pending_input[:written]
        if not self._closed:
            self._loop.update_handler(self._fd, self._events())

    def resize(self, size: protocol.Resize) -> None:
        self._size = size
        if not self._closed:
            set_winsize(self._fd, size.cols, size.rows)

    def set_reading(self, reading: bool) -> None:
        if reading != self._reading and not self._closed:
            self._reading = reading
            self._loop.update_handler(self._fd, self._events())

    def close(self) -> None:
        """Stop the attach client; the tmux session itself is untouched. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._resting is not None:
            self._loop.remove_timeout(self._resting)
            self._resting = None
        with contextlib.suppress(ValueError, KeyError):
            self._loop.remove_handler(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        # Closing the master hangs the client up; SIGTERM covers a client ignoring SIGHUP.
        if self._proc is not None and self._proc.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGTERM)
        self._on_closed()

    def _on_process_exit(self, returncode: int) -> None:
        self.exited.set()
        self._live.discard(self)
        if not self._closed:
            self._loop.add_callback(self.close)


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


class TerminalChannel:
    """One client connection to one session: hello, replay, then live output with flow control.

    Owns the TmuxAttachment. `unacked` counts output bytes sent and not yet acknowledged; reading
    the PTY pauses above HIGH_WATER or while the sink is backed up and resumes below LOW_WATER.
    """

    def __init__(
        self,
        sessions: TmuxSessions,
        run_blocking: Callable[..., Any],
        session: str,
        size: protocol.Resize,
        sink: Sink,
        transport: str,
        env: Mapping[str, str],
        live: set[TmuxAttachment],
    ) -> None:
        self.session = session
        self._live = live
        self.transport = transport
        self._sessions = sessions
        self._run_blocking = run_blocking
        self._size = size
        self._sink = sink
        self._env = env
        self.unacked = 0
        self.paused = False
        self.closed = False
        self._attachment: TmuxAttachment | None = None

    @property
    def attach_pid(self) -> int | None:
        return self._attachment.pid if self._attachment else None

    async def open(self) -> bool:
        """Send hello and the replay, then attach. False (and the sink closed) if there is no session."""
        self._sink.send_json(protocol.hello(self.session, self.transport))
        try:
            snapshot = await self._run_blocking(self._sessions.capture, self.session)
        except SessionNotFound as exc:
            self._finish(protocol.CLOSE_NO_SESSION, str(exc))
            return False
        except TmuxError as exc:
            self._finish(protocol.CLOSE_TERMINAL_LOST, str(exc))
            return False
        if self.closed:
            return False
        self._send_output(render_replay(snapshot))
        self._sink.send_json({"type": protocol.READY})
        self._attachment = TmuxAttachment(
            self._sessions,
            self.session,
            self._size,
            self._send_output,
            self._on_attachment_closed,
            self._env,
            self._live,
        )
        self._attachment.start()
        return True

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

    def write(self, data: bytes) -> None:
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
            alive = await self._run_blocking(self._sessions.exists, self.session)
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
        if code == protocol.CLOSE_NO_SESSION:
            self._sink.send_json(protocol.error(reason))
        self._sink.close(code, reason)
        if self._attachment is not None:
            self._attachment.close()

    def close(self) -> None:
        """The client went away: stop the attach client. Idempotent; the session lives on."""
        if self.closed:
            return
        self.closed = True
        if self._attachment is not None:
            self._attachment.close()
