"""A pane's tmux history as the page reaches it: scrolling, jumping, searching, leaving copy mode.

xterm.js keeps no scrollback of its own when tmux runs the shell, so the wheel, the page's scrollbar,
a touch swipe and Find all land here. Each call is one tmux process (chained commands), blocking:
callers run it through run_blocking, never on the event loop.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from services.tmux import TmuxError, TmuxSessions, validate_session_name

MAX_QUERY_CHARS = 200
MAX_RESULTS = 500
_STATE_FORMAT = (
    "#{pane_in_mode} #{?scroll_position,#{scroll_position},0} #{history_size} #{pane_height} "
    "#{mouse_any_flag} #{alternate_on}"
)


@dataclass(frozen=True)
class HistoryState:
    """Where the pane's view is: `position` lines above the live screen, of `history` lines."""

    in_mode: bool
    position: int
    history: int
    rows: int
    app_mouse: bool  # the program asked for mouse events: the wheel is its, not the history's
    alternate: bool  # a full-screen program: its screen has no history to scroll

    def to_json(self) -> dict[str, Any]:
        state = asdict(self)
        del state["app_mouse"], state["alternate"]
        return state


@dataclass(frozen=True)
class Match:
    line: int  # from the oldest line of the history, 0-based
    offset: int  # the scroll position that puts this line at the top of the screen
    text: str


@dataclass(frozen=True)
class SearchResult:
    matches: list[Match]
    truncated: bool  # more matched than MAX_RESULTS; the most recent are kept
    history: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _target(session: str) -> str:
    return f"={validate_session_name(session)}:"


def _parse_state(line: str) -> HistoryState:
    in_mode, position, history, rows, mouse, alternate = (int(v or 0) for v in line.split())
    return HistoryState(in_mode == 1, position, history, rows, mouse == 1, alternate == 1)


def state(sessions: TmuxSessions, session: str) -> HistoryState:
    [line] = sessions.run("display-message", "-p", "-t", _target(session), _STATE_FORMAT)
    return _parse_state(line)


def scroll(sessions: TmuxSessions, session: str, lines: int) -> HistoryState:
    """Scroll the history `lines` up (positive) or down (negative); copy mode starts and, at the
    bottom, ends by itself (`copy-mode -e`). A full-screen program gets arrow keys instead."""
    target = _target(session)
    before = state(sessions, session)
    if lines == 0 or before.app_mouse:
        return before  # a program that reads the mouse gets the wheel from the page directly
    if before.alternate and not before.in_mode:
        # As xterm's alternateScroll: less, man and editors without mouse support scroll by arrows.
        key = "Up" if lines > 0 else "Down"
        sessions.run("send-keys", "-t", target, "-N", str(abs(lines)), key)
        return before
    if lines < 0 and not before.in_mode:
        return before  # already at the live screen
    command = "scroll-up" if lines > 0 else "scroll-down"
    out = sessions.run(
        *("copy-mode", "-e", "-t", target, ";"),
        *("send-keys", "-t", target, "-X", "-N", str(abs(lines)), command, ";"),
        *("display-message", "-p", "-t", target, _STATE_FORMAT),
    )
    return _parse_state(out[-1])


def goto(sessions: TmuxSessions, session: str, position: int) -> HistoryState:
    """Show the history `position` lines above the live screen (0: leave copy mode)."""
    target = _target(session)
    if position <= 0:
        return leave_copy_mode(sessions, session)
    out = sessions.run(
        *("copy-mode", "-e", "-t", target, ";"),
        *("send-keys", "-t", target, "-X", "goto-line", str(position), ";"),
        *("display-message", "-p", "-t", target, _STATE_FORMAT),
    )
    return _parse_state(out[-1])


def leave_copy_mode(sessions: TmuxSessions, session: str) -> HistoryState:
    """Cancel copy mode if the pane is in it: one tmux process, no race with a check."""
    target = _target(session)
    out = sessions.run(
        *("if-shell", "-F", "-t", target, "#{pane_in_mode}", f"send-keys -t {target} -X cancel", ";"),
        *("display-message", "-p", "-t", target, _STATE_FORMAT),
    )
    return _parse_state(out[-1])


def search(sessions: TmuxSessions, session: str, query: str) -> SearchResult:
    """Lines of the whole history and screen containing `query` (case-insensitive), oldest first."""
    target = _target(session)
    # Unjoined (-J off) so that line numbers are tmux's own and a jump lands on the line.
    proc = subprocess.run(
        [sessions.tmux_bin, "-S", sessions.socket_path, "capture-pane", "-p", "-S", "-", "-t", target],
        capture_output=True,
        timeout=20,
        check=False,
    )
    if proc.returncode != 0:
        sessions.run("has-session", "-t", target.rstrip(":"))  # SessionNotFound if that is why
        raise TmuxError(proc.stderr.decode(errors="replace").strip() or "capture-pane failed")
    current = state(sessions, session)
    lines = proc.stdout.decode(errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    wanted = query.casefold()
    hits = [i for i, text in enumerate(lines) if wanted in text.casefold()]
    kept = hits[-MAX_RESULTS:]
    # Lines 0..history-1 are history; line `history` is the top row of the live screen.
    matches = [Match(i, max(0, current.history - i), lines[i].rstrip()) for i in kept]
    return SearchResult(matches, len(hits) > len(kept), current.history)
