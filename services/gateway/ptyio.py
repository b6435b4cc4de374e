"""The master side of a PTY on the IOLoop, shared by both terminal backends: a `tmux attach` client's
PTY (services/gateway/terminal.py) and, without tmux, a shell's own PTY (services/gateway/ptys.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import math
import os
import struct
import termios
import tty
from collections.abc import Callable, Mapping
from pathlib import Path

from tornado.ioloop import IOLoop
from tornado.process import Subprocess

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


def take_controlling_tty() -> None:
    # Runs in the child after setsid(): make the PTY (fd 0) its controlling terminal so the
    # kernel delivers SIGWINCH (and Ctrl-C's SIGINT) to the programs on it.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def spawn_on_pty(
    argv: list[str],
    cols: int,
    rows: int,
    env: Mapping[str, str],
    cwd: Path | None = None,
    raw: bool = False,
) -> tuple[Subprocess, int]:
    """Start `argv` in a session of its own on a new PTY of the given size; (process, master fd).

    The PTY is its controlling terminal, so one kill of the session reaches all it started and the
    kernel delivers SIGWINCH. `raw` sets the line discipline raw before the program runs.
    """
    master, slave = os.openpty()
    try:
        set_winsize(slave, cols, rows)
        if raw:
            tty.setraw(slave)
        os.set_blocking(master, False)
        proc = Subprocess(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=take_controlling_tty,
            env=dict(env),
            cwd=cwd,
            close_fds=True,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return proc, master


class PtyMaster:
    """A PTY master fd registered with the IOLoop: what the terminal says goes to `on_output` as it
    comes (floods gathered into large reads), input is queued without ever blocking, and reading can
    be paused (flow control) without losing anything: unread output waits in the kernel.

    `on_hangup` runs once when the other side is gone (EOF/EIO, or a write error); the owner then
    calls close(). Everything runs on the IOLoop's thread.
    """

    def __init__(
        self, fd: int, label: str, on_output: Callable[[bytes], None], on_hangup: Callable[[], None]
    ) -> None:
        self.fd = fd
        self._label = label
        self._on_output = on_output
        self._on_hangup = on_hangup
        self._pending_input = bytearray()
        self._reading = True
        self._resting: object | None = None  # the IOLoop timeout that ends a rest
        self._flood = FloodMeter()
        self._hung_up = False
        self.closed = False
        self._loop = IOLoop.current()
        self._loop.add_handler(fd, self._on_events, IOLoop.READ)

    def _events(self) -> int:
        events = IOLoop.READ if self._reading and self._resting is None else 0
        if self._pending_input:
            events |= IOLoop.WRITE
        return events | IOLoop.ERROR

    def _on_events(self, fd: int, events: int) -> None:
        if events & IOLoop.WRITE:
            self._flush_input()
        if self.closed:
            return
        if events & IOLoop.READ or (events & IOLoop.ERROR and self._reading):
            data, ended = self._read_available()
            if data:
                self._on_output(data)
            if ended:
                self._hangup()
                return
            if data and not self.closed and self._flood.should_rest(len(data), self._loop.time()):
                self._rest()

    def _read_available(self) -> tuple[bytes, bool]:
        """Everything the PTY holds now, up to MAX_FRAME; and whether the other side is gone."""
        chunks: list[bytes] = []
        size = 0
        while size < MAX_FRAME:
            try:
                chunk = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO = the other side of the PTY is gone
                    log.warning("reading the terminal of %s failed: %s", self._label, exc)
                return b"".join(chunks), True
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), False

    def drain(self) -> None:
        """Pass on what the PTY still holds, paused or not (its program has exited)."""
        if self.closed:
            return
        data, _ = self._read_available()
        if data:
            self._on_output(data)

    def _hangup(self) -> None:
        if not self._hung_up:
            self._hung_up = True
            self._on_hangup()

    def _rest(self) -> None:
        self._resting = self._loop.call_later(BATCH_DELAY, self._end_rest)
        self._loop.update_handler(self.fd, self._events())

    def _end_rest(self) -> None:
        self._resting = None
        if not self.closed:
            self._loop.update_handler(self.fd, self._events())

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        if len(self._pending_input) + len(data) > MAX_PENDING_INPUT:
            raise OverflowError("the terminal is not reading input fast enough; input dropped")
        self._flood.input_written(self._loop.time())
        self._pending_input += data
        self._flush_input()

    def _flush_input(self) -> None:
        while self._pending_input and not self.closed:
            try:
                written = os.write(self.fd, self._pending_input)
            except BlockingIOError:
                break
            except OSError:
                self._hangup()
                return
            del self._pending_input[:written]
        if not self.closed:
            self._loop.update_handler(self.fd, self._events())

    def resize(self, cols: int, rows: int) -> None:
        if not self.closed:
            set_winsize(self.fd, cols, rows)

    def set_reading(self, reading: bool) -> None:
        if reading != self._reading and not self.closed:
            self._reading = reading
            self._loop.update_handler(self.fd, self._events())

    def foreground_pid(self) -> int | None:
        """The process group leading the terminal now (the shell, or what it runs)."""
        if self.closed:
            return None
        try:
            return os.tcgetpgrp(self.fd)
        except OSError:
            return None

    def close(self) -> None:
        """Unregister and close the master; the other side sees a hangup. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._resting is not None:
            self._loop.remove_timeout(self._resting)
            self._resting = None
        with contextlib.suppress(ValueError, KeyError):
            self._loop.remove_handler(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)
