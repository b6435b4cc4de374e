"""tmux sessions: the only place that turns session names into tmux commands.

Every call here runs one or more tmux processes (~2-3 ms each), so async callers must run them in an
executor, never on the event loop. Names are validated before they reach any tmux command line, and
targets use tmux's `=name` exact-match form so `ma` never resolves to `main`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import libtmux
from libtmux.exc import LibTmuxException

SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
SESSION_NAME_RULE = "1-32 characters from A-Z, a-z, 0-9, '_' and '-'"
REPLAY_HISTORY_LINES = 2000
_FIELD_SEP = "\x1f"
_LIST_FORMAT = _FIELD_SEP.join(
    [
        "#{session_name}",
        "#{session_created}",
        "#{session_attached}",
        "#{session_activity}",
        "#{pane_current_command}",
        "#{session_windows}",
        "#{session_id}",
        # Bells rung in the session (counted by tmux.conf's alert-bell hook) and the current
        # window's last output: the page's "bell" and "finished" marks on background tabs.
        "#{?@bells,#{@bells},0}",
        "#{window_activity}",
    ]
)


class TmuxError(RuntimeError):
    """tmux failed or is not running; the message is safe to show a user."""


class InvalidSessionName(ValueError):
    def __init__(self, name: str) -> None:
        shown = name if len(name) <= 40 else name[:40] + "…"
        super().__init__(f"invalid session name {shown!r}: use {SESSION_NAME_RULE}")


class SessionNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no session named {name!r}")


class SessionExists(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a session named {name!r} already exists")


def validate_session_name(name: object) -> str:
    if not isinstance(name, str) or not SESSION_NAME_RE.fullmatch(name):
        raise InvalidSessionName(str(name))
    return name


@dataclass(frozen=True)
class SessionInfo:
    name: str
    created: int
    clients: int
    last_activity: int
    command: str
    windows: int
    degraded: bool = False  # a shell on the gateway's own PTY (no tmux): it ends with the gateway
    bells: int = 0  # bells rung so far (a counter: the page remembers how many it has shown)
    output_at: int = 0  # when the current window last printed something (epoch seconds)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PaneSnapshot:
    """What a reattaching client needs to repaint: recent lines with colours and the cursor."""

    content: bytes
    cursor_x: int
    cursor_y: int
    rows: int
    alternate_screen: bool


class TmuxSessions:
    """Session management over one tmux server, shared by the gateway and command-line tools."""

    def __init__(
        self, server: libtmux.Server, start_directory: Path | None = None, shell_path: str | None = None
    ) -> None:
        self.server = server
        self.start_directory = start_directory
        # tmux gives a new pane the PATH of the client that created it, not the server's; session
        # creation therefore runs its client with the shells' PATH.
        self.shell_path = shell_path

    @classmethod
    def for_socket(
        cls,
        socket_path: Path,
        tmux_bin: str,
        start_directory: Path | None = None,
        shell_path: str | None = None,
    ) -> TmuxSessions:
        server = libtmux.Server(socket_path=str(socket_path), tmux_bin=tmux_bin)
        return cls(server, start_directory, shell_path)

    @property
    def socket_path(self) -> str:
        return str(self.server.socket_path)

    @property
    def tmux_bin(self) -> str:
        return str(self.server.tmux_bin or "tmux")

    def run(self, *args: str) -> list[str]:
        """One tmux command line (";" chains commands); its stdout lines. TmuxError/SessionNotFound."""
        return self._run(*args)

    def _run(self, *args: str) -> list[str]:
        try:
            result = self.server.cmd(*args)
        except LibTmuxException as exc:
            raise TmuxError(str(exc)) from exc
        if result.returncode != 0:
            message = " ".join(result.stderr).strip() or f"tmux {args[0]} failed"
            if any(
                m in message for m in ("no server running", "error connecting", "server exited unexpectedly")
            ):
                raise TmuxError("tmux server is not running")
            # "no current target": the server has no sessions at all.
            if any(m in message for m in ("can't find session", "can't find window", "no current target")):
                raise SessionNotFound(_target_name(args))
            raise TmuxError(message)
        return list(result.stdout)

    def is_running(self) -> bool:
        try:
            self._run("list-sessions", "-F", "#{session_name}")
        except TmuxError:
            return False
        return True

    def list_sessions(self) -> list[SessionInfo]:
        try:
            lines = self._run("list-sessions", "-F", _LIST_FORMAT)
        except TmuxError as exc:
            # A running server with zero sessions answers "no sessions" on some versions.
            if "no sessions" in str(exc):
                return []
            raise
        sessions = []
        for line in lines:
            parts = line.split(_FIELD_SEP)
            if len(parts) != 9:
                continue
            name, created, clients, activity, command, windows, session_id, bells, output_at = parts
            info = SessionInfo(
                name,
                int(created),
                int(clients),
                int(activity),
                command,
                int(windows),
                bells=int(bells) if bells.isdigit() else 0,
                output_at=int(output_at or 0),
            )
            sessions.append((int(session_id.lstrip("$")), info))
        # Session ids grow with each new session: creation order, finer than `created` seconds.
        return [info for _, info in sorted(sessions, key=lambda pair: pair[0])]

    def exists(self, name: str) -> bool:
        validate_session_name(name)
        try:
            self._run("has-session", "-t", f"={name}")
        except SessionNotFound:
            return False
        except TmuxError as exc:
            if "not running" in str(exc):
                raise
            return False
        return True

    def get(self, name: str) -> SessionInfo:
        validate_session_name(name)
        for info in self.list_sessions():
            if info.name == name:
                return info
        raise SessionNotFound(name)

    def next_free_name(self, prefix: str = "shell") -> str:
        taken = {s.name for s in self.list_sessions()}
        n = 1
        while f"{prefix}-{n}" in taken:
            n += 1
        return f"{prefix}-{n}"

    def create(
        self, name: str | None = None, cols: int = 120, rows: int = 36, command: str | None = None
    ) -> SessionInfo:
        """Create a detached session whose shell starts in the projects folder (and runs `command`,
        typed in as new_window does).

        Raises SessionExists rather than attaching to or replacing an existing session.
        """
        name = self.next_free_name() if name is None else validate_session_name(name)
        proc = self._run_with_shell_path("new-session", "-d", "-s", name, "-x", str(cols), "-y", str(rows))
        if proc.returncode != 0:
            message = proc.stderr.strip() or "tmux new-session failed"
            if "duplicate session" in message:
                raise SessionExists(name)
            if any(
                m in message for m in ("no server running", "error connecting", "server exited unexpectedly")
            ):
                raise TmuxError("tmux server is not running")
            raise TmuxError(message)
        if command:
            self._type_command(f"={name}:", command)
        return self.get(name)

    def _run_with_shell_path(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A pane-creating command, run by a client whose PATH the new pane inherits (see __init__),
        starting in the projects folder."""
        if self.start_directory is not None:
            self.start_directory.mkdir(parents=True, exist_ok=True)
            args = (*args, "-c", str(self.start_directory))
        env = dict(os.environ)
        if self.shell_path is not None:
            env["PATH"] = self.shell_path
        return subprocess.run(
            [self.tmux_bin, "-S", self.socket_path, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

    def ensure(self, name: str, cols: int = 120, rows: int = 36) -> SessionInfo:
        try:
            return self.create(name, cols, rows)
        except SessionExists:
            return self.get(name)

    def rename(self, name: str, new_name: str) -> SessionInfo:
        """Rename a session; attached clients stay attached (tmux follows the session, not its name)."""
        validate_session_name(name)
        validate_session_name(new_name)
        if new_name != name and self.exists(new_name):
            raise SessionExists(new_name)  # tmux would say "duplicate session" too, less clearly
        self._run("rename-session", "-t", f"={name}", new_name)
        return self.get(new_name)

    def session_of_pane(self, pane_id: str) -> str | None:
        """The session a pane (`%N`, a shell's $TMUX_PANE) is in now; None once the pane is gone."""
        if not re.fullmatch(r"%[0-9]{1,9}", pane_id):
            return None
        for line in self._run("list-panes", "-a", "-F", "#{pane_id} #{session_name}"):
            pane, _, session = line.partition(" ")
            if pane == pane_id:
                return session
        return None

    def pane_pids(self, name: str) -> list[int]:
        validate_session_name(name)
        return [int(p) for p in self._run("list-panes", "-s", "-t", f"={name}", "-F", "#{pane_pid}") if p]

    def kill(self, name: str, grace_seconds: float = 2.0) -> None:
        """Kill the session and every process that ran in its panes.

        tmux only HUPs each pane's process group; background jobs and double-forked children of the
        shell keep its session id, so they are found by session id and killed too.
        """
        pids = self.pane_pids(name)
        self._run("kill-session", "-t", f"={name}")
        kill_sessions(pids, grace_seconds)

    def capture(self, name: str, history_lines: int = REPLAY_HISTORY_LINES) -> PaneSnapshot:
        # display-message falls back to the current session for a missing target: check first.
        self._run("has-session", "-t", f"={name}")
        target = f"={name}:"
        info = self._run(
            "display-message",
            "-p",
            "-t",
            target,
            "#{cursor_x} #{cursor_y} #{pane_height} #{alternate_on}",
        )
        cursor_x, cursor_y, rows, alt = (int(v) for v in info[0].split())
        # libtmux's cmd() decodes stdout into str lines; run tmux directly to keep the raw bytes.
        proc = subprocess.run(
            [
                self.tmux_bin,
                "-S",
                self.socket_path,
                "capture-pane",
                "-p",
                "-e",
                "-J",
                "-N",
                "-S",
                f"-{history_lines}",
                "-t",
                target,
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if proc.returncode != 0:
            raise TmuxError(proc.stderr.decode(errors="replace").strip() or "capture-pane failed")
        return PaneSnapshot(proc.stdout, cursor_x, cursor_y, rows, alt == 1)

    def new_window(self, name: str, window_name: str, command: str) -> int:
        """Open a window in session `name` whose shell starts by running `command`; its index.

        The command is typed into an interactive shell rather than run as the window's process, so
        quitting the agent leaves the user at a prompt in the same window, not a closed one.
        """
        validate_session_name(name)
        proc = self._run_with_shell_path(
            "new-window", "-t", f"={name}:", "-n", window_name, "-P", "-F", "#{window_index}"
        )
        if proc.returncode != 0:
            message = proc.stderr.strip() or "tmux new-window failed"
            if "can't find session" in message:
                raise SessionNotFound(name)
            raise TmuxError(message)
        index = int(proc.stdout.strip())
        self._type_command(f"={name}:{index}", command)
        return index

    def _type_command(self, target: str, command: str) -> None:
        self._run("send-keys", "-t", target, "-l", command)
        self._run("send-keys", "-t", target, "Enter")

    def set_environment(self, key: str, value: str) -> None:
        """Set a variable for every new pane (tmux global environment)."""
        self._run("set-environment", "-g", key, value)


def server_answers(socket_path: Path) -> bool:
    """A tmux server listens on the socket (a connect costs microseconds, a tmux command ~3 ms)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:  # no socket, a stale one (refused), or a path too long for sun_path
            return False
    return True


def _target_name(args: tuple[str, ...]) -> str:
    """The session name inside a `-t =name[:]` argument, for error messages."""
    for flag, value in itertools.pairwise(args):
        if flag == "-t":
            return value.removeprefix("=").split(":", 1)[0]
    return "?"


def _session_members(sids: set[int]) -> list[int]:
    members = []
    for entry in (p.name for p in Path("/proc").iterdir()):
        if not entry.isdigit():
            continue
        try:
            with Path(f"/proc/{entry}/stat").open("rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces) start after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) in sids:
            members.append(int(entry))
    return members


def kill_sessions(sids: list[int], grace_seconds: float) -> None:
    """SIGHUP, then SIGKILL after the grace period, every process whose session id is in `sids`."""
    wanted = set(sids)
    for pid in _session_members(wanted):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not _session_members(wanted):
            return
        time.sleep(0.02)
    for pid in _session_members(wanted):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
