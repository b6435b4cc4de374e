"""Degraded mode: shells on PTYs the gateway owns itself, for when no tmux server can be had.

A plain web terminal, as terminado does it: each session is one shell on one PTY, and every client
attached to it shares that PTY. A client gets the recent output (a bounded ring buffer) as its
replay, then the live stream. What is lost without tmux: shells end when the gateway process ends,
and a slow client slows the shell for every client on it (there is no tmux to drop and redraw).
Everything here runs on the IOLoop's thread, except the killing, which waits.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from tornado.process import Subprocess

from services.gateway import protocol
from services.gateway.ptyio import PtyMaster, spawn_on_pty
from services.tmux import SessionExists, SessionInfo, SessionNotFound, kill_sessions, validate_session_name

# Recent output kept per shell for reattaching clients: a few screens of a busy TUI, a lot of prompt.
RING_BYTES = 256 * 1024
KILL_GRACE_SECONDS = 2.0
SHUTDOWN_GRACE_SECONDS = 1.0  # supervisord allows the gateway 3 s to stop in


class PtyClient:
    """One attached client of a PtyShell (an Attachment for TerminalChannel)."""

    def __init__(
        self, shell: PtyShell, on_output: Callable[[bytes], None], on_closed: Callable[[], None]
    ) -> None:
        self.shell = shell
        self.on_output = on_output
        self._on_closed = on_closed
        self.reading = True
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.shell.write(data)

    def resize(self, size: protocol.Resize) -> None:
        if not self.closed:
            self.shell.resize(size)

    def set_reading(self, reading: bool) -> None:
        if reading != self.reading and not self.closed:
            self.reading = reading
            self.shell.update_reading()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.shell.unsubscribe(self)
        self._on_closed()


class PtyShell:
    """A shell in its own session on a PTY whose master this process holds.

    Ends when the shell exits (or the terminal hangs up): the master is closed, which hangs up what
    the shell left running in the foreground, `on_end` runs and every client is closed.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: Path,
        size: protocol.Resize,
        on_end: Callable[[PtyShell], None],
    ) -> None:
        self.name = name
        self.created = int(time.time())
        self.last_activity = self.created
        self._argv = argv
        self._env = dict(env)
        self._cwd = cwd
        self._size = size
        self._on_end = on_end
        self._ring = bytearray()
        self._trimmed = False  # the ring has dropped its oldest output
        self._clients: list[PtyClient] = []
        self._master: PtyMaster | None = None
        self._proc: Subprocess | None = None
        self.ended = False

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return int(self._proc.pid)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        self._cwd.mkdir(parents=True, exist_ok=True)
        self._proc, master = spawn_on_pty(
            self._argv, self._size.cols, self._size.rows, self._env, cwd=self._cwd
        )
        self._master = PtyMaster(master, self.name, self._output, self.end)
        self._proc.set_exit_callback(self._exited)

    def info(self) -> SessionInfo:
        return SessionInfo(
            self.name,
            self.created,
            self.clients,
            self.last_activity,
            self.command(),
            1,
            degraded=True,
            output_at=self.last_activity,  # updated on output; bells are not counted without tmux
        )

    def command(self) -> str:
        """The name of what runs in the foreground (the shell, or a program it started)."""
        pid = self._master.foreground_pid() if self._master else None
        try:
            return Path(f"/proc/{pid or self.pid}/comm").read_text().strip()
        except OSError:
            return ""

    def _output(self, data: bytes) -> None:
        self.last_activity = int(time.time())
        self._ring += data
        if len(self._ring) > RING_BYTES:
            del self._ring[: len(self._ring) - RING_BYTES]
            self._trimmed = True
        for client in list(self._clients):
            client.on_output(data)

    def replay(self) -> bytes:
        """The ring's output, from a line start once the oldest output is gone (not mid-sequence)."""
        data = bytes(self._ring)
        if self._trimmed:
            data = data[data.find(b"\n") + 1 :]
        return b"\x1b[0m" + data

    def subscribe(
        self,
        size: protocol.Resize,
        on_replay: Callable[[bytes], None],
        on_output: Callable[[bytes], None],
        on_closed: Callable[[], None],
    ) -> PtyClient:
        """Replay and join the live stream in one step on the loop: nothing missed, nothing twice."""
        client = PtyClient(self, on_output, on_closed)
        on_replay(self.replay())
        self._clients.append(client)
        self.resize(size)  # the latest client decides the size, as tmux's window-size latest does
        return client

    def unsubscribe(self, client: PtyClient) -> None:
        if client in self._clients:
            self._clients.remove(client)
            self.update_reading()

    def update_reading(self) -> None:
        # One PTY for every client: it waits for the slowest (a paused client must not lose output).
        if self._master is not None:
            self._master.set_reading(all(c.reading for c in self._clients))

    def write(self, data: bytes) -> None:
        if self._master is not None:
            self._master.write(data)

    def resize(self, size: protocol.Resize) -> None:
        self._size = size
        if self._master is not None:
            self._master.resize(size.cols, size.rows)

    def _exited(self, returncode: int) -> None:
        if self._master is not None:
            self._master.drain()  # what it printed last (e.g. "logout") is still in the PTY
        self.end()

    def end(self) -> None:
        """Close the terminal and tell every client the session ended. Idempotent."""
        if self.ended:
            return
        self.ended = True
        if self._master is not None:
            self._master.close()
        self._on_end(self)
        for client in list(self._clients):
            client.close()


class PtySessions:
    """The degraded backend: named PtyShells, for REST (list/create/kill) and for TerminalChannel."""

    def __init__(
        self,
        env: Mapping[str, str],
        start_directory: Path,
        run_blocking: Callable[..., Awaitable[Any]],
    ) -> None:
        """`env` is the shells' environment (services.shell_env), run_blocking the gateway's executor."""
        self._env = {**env, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
        self._env.setdefault("LANG", "C.UTF-8")
        self._start_directory = start_directory
        self._run_blocking = run_blocking
        self._shells: dict[str, PtyShell] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._shells

    def names(self) -> list[str]:
        return list(self._shells)

    def list_sessions(self) -> list[SessionInfo]:
        return [shell.info() for shell in self._shells.values()]

    def get(self, name: str) -> SessionInfo:
        return self._shell(name).info()

    def _shell(self, name: str) -> PtyShell:
        shell = self._shells.get(validate_session_name(name))
        if shell is None:
            raise SessionNotFound(name)
        return shell

    def create(self, name: str, cols: int = 120, rows: int = 36, command: str | None = None) -> SessionInfo:
        """Start a shell in the projects folder; `command` is typed into it, so quitting that program
        leaves a prompt (as a tmux window's launcher does)."""
        validate_session_name(name)
        if name in self._shells:
            raise SessionExists(name)
        argv = [self._env.get("SHELL") or "/bin/sh"]
        shell = PtyShell(
            name, argv, self._env, self._start_directory, protocol.Resize(cols, rows), self._forget
        )
        shell.start()
        self._shells[name] = shell
        if command:
            shell.write(command.encode() + b"\r")
        return shell.info()

    def rename(self, name: str, new_name: str) -> SessionInfo:
        shell = self._shell(name)
        validate_session_name(new_name)
        if new_name != name and new_name in self._shells:
            raise SessionExists(new_name)
        del self._shells[name]
        shell.name = new_name
        self._shells[new_name] = shell
        return shell.info()

    def _forget(self, shell: PtyShell) -> None:
        if self._shells.get(shell.name) is shell:
            del self._shells[shell.name]

    async def kill(self, name: str, grace_seconds: float = KILL_GRACE_SECONDS) -> None:
        """Kill the shell and everything it started (its session: background jobs, their children)."""
        shell = self._shell(name)
        self._forget(shell)  # gone from the list at once; a new session may take the name
        await self._run_blocking(kill_sessions, [shell.pid], grace_seconds)
        shell.end()

    async def attach(
        self,
        session: str,
        size: protocol.Resize,
        on_replay: Callable[[bytes], None],
        on_output: Callable[[bytes], None],
        on_closed: Callable[[], None],
    ) -> PtyClient:
        return self._shell(session).subscribe(size, on_replay, on_output, on_closed)

    async def exists(self, session: str) -> bool:
        return session in self._shells

    async def close_all(self) -> None:
        """Gateway shutdown: every shell and what it started is killed (nothing may outlive us)."""
        shells = list(self._shells.values())
        self._shells.clear()
        if not shells:
            return
        # SIGHUP to every process of their sessions, as a closing terminal would; SIGKILL what stays.
        await self._run_blocking(kill_sessions, [s.pid for s in shells], SHUTDOWN_GRACE_SECONDS)
        for shell in shells:
            shell.end()
