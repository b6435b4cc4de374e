"""The terminal wire protocol: the single source of message names, limits and parsing.

Documented in PROTOCOL.md beside this file. The browser imports the same names from
`/js/protocol.js`, which the gateway renders from this module, so client and server cannot drift.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

VERSION = 1

# Server -> client text frames.
HELLO = "hello"
READY = "ready"  # replay of the current screen is over; input from here on goes to the shell
EXIT = "exit"
ERROR = "error"
PONG = "pong"
OUTPUT = "output"  # long-poll only: WebSocket output travels as binary frames
CLOSED = "closed"  # long-poll only: the WebSocket close frame's equivalent, with code and reason
HISTORY = "history"  # where the pane's view is in tmux's history (answers `scroll`)
DOWNLOAD = "download"  # `download FILE` ran in this session's pane: fetch /api/downloads/{token}

# Client -> server text frames.
INPUT = "input"
RESIZE = "resize"
ACK = "ack"
PING = "ping"
SCROLL = "scroll"  # move through tmux's history: `lines` up (+) / down (-), or `to` a position
CLIENT_TYPES = (INPUT, RESIZE, ACK, PING, SCROLL)

# Where a session's history lives, in `hello`: tmux's (the page keeps no scrollback and scrolls
# with `scroll`), or the page's own (no tmux: xterm.js scrollback, searched in the page).
HISTORY_TMUX = "tmux"
HISTORY_LOCAL = "local"
MAX_SCROLL_LINES = 100_000

# Flow control: the gateway stops reading the PTY above HIGH_WATER unacked bytes and resumes
# below LOW_WATER; the client acks about every ACK_EVERY rendered bytes.
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
ACK_EVERY = 64 * 1024
PING_INTERVAL_SECONDS = 20
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_COLS = 1000
MAX_ROWS = 500
# Replies the client asked for (errors, pongs) queue like output; a client that keeps asking without
# reading is cut off once this much is waiting for it, so it cannot grow the gateway's memory.
MAX_QUEUED_REPLY_BYTES = HIGH_WATER
# What one queued reply costs the gateway beyond its bytes (frame, future, callback, dict): a
# 16-byte pong is ~2 KiB of memory while it waits (scripts/bench abuse measured ~2 KiB per pong).
REPLY_OVERHEAD_BYTES = 2048
# Largest long-poll POST body (a batch of client messages): the same as one WebSocket frame.
MAX_POLL_BODY_BYTES = MAX_MESSAGE_BYTES
MAX_POLL_MESSAGES = 1000  # client messages in one long-poll POST
MAX_PROTOCOL_ERRORS = 1000  # malformed messages a WebSocket may send before it is closed (4400)

# WebSocket close codes (4000-4999 are the application's).
CLOSE_NORMAL = 1000  # the session ended: do not reconnect
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_SESSION = 4404
CLOSE_TOO_MANY = 4429  # a connection limit (README, "Limits"): the reason says which; retry later
CLOSE_NOT_READING = 4408  # over MAX_QUEUED_REPLY_BYTES of replies waited for the client
CLOSE_TERMINAL_LOST = 4500  # the tmux client died; reconnecting reattaches

POLL_WAIT_SECONDS = 25
POLL_IDLE_TIMEOUT_SECONDS = 60


class ProtocolError(ValueError):
    """A client message that breaks the protocol; the text is sent back as an error message."""


@dataclass(frozen=True)
class Input:
    data: bytes


@dataclass(frozen=True)
class Resize:
    cols: int
    rows: int


@dataclass(frozen=True)
class Ack:
    bytes: int


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Scroll:
    lines: int = 0  # up (+) or down (-) by this many lines; 0 with `to` None: just report
    to: int | None = None  # show the history this many lines above the live screen (0: live)


ClientMessage = Input | Resize | Ack | Ping | Scroll


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(f"scroll needs '{field}' a whole number from {low} to {high}")
    return value


def parse_scroll(msg: dict[str, Any]) -> Scroll:
    if msg.get("to") is not None:
        return Scroll(to=_whole(msg["to"], "to", 0, MAX_SCROLL_LINES * 100))
    return Scroll(lines=_whole(msg.get("lines", 0), "lines", -MAX_SCROLL_LINES, MAX_SCROLL_LINES))


def _positive_int(value: Any, field: str, maximum: int) -> int:
    # bool is an int subclass; `true` is not a size.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{field} must be a whole number from 1 to {maximum}")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise ProtocolError(f"{field} must be a whole number from 1 to {maximum}")
    number = int(value)
    if not 1 <= number <= maximum:
        raise ProtocolError(f"{field} must be a whole number from 1 to {maximum}, got {number}")
    return number


def parse_size(cols: Any, rows: Any) -> Resize:
    return Resize(_positive_int(cols, "cols", MAX_COLS), _positive_int(rows, "rows", MAX_ROWS))


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one client text frame (JSON object) into a typed message or raise ProtocolError."""
    return parse_client_object(parse_json(text))


def parse_json(text: str | bytes) -> Any:
    """json.loads, with every way it can fail (a deeply nested document exhausts the recursion
    limit) turned into a ProtocolError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ProtocolError("message is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("message is not valid JSON") from None


def parse_client_object(msg: Any) -> ClientMessage:
    if not isinstance(msg, dict):
        raise ProtocolError("message must be a JSON object with a 'type'")
    kind = msg.get("type")
    if kind == INPUT:
        data = msg.get("data")
        if not isinstance(data, str):
            raise ProtocolError("input needs a string 'data'")
        return Input(data.encode("utf-8", errors="surrogatepass"))
    if kind == RESIZE:
        return parse_size(msg.get("cols"), msg.get("rows"))
    if kind == ACK:
        count = msg.get("bytes")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ProtocolError("ack needs a non-negative integer 'bytes'")
        return Ack(count)
    if kind == PING:
        return Ping()
    if kind == SCROLL:
        return parse_scroll(msg)
    shown = kind if isinstance(kind, str) and len(kind) <= 32 else "?"
    raise ProtocolError(f"unknown message type {shown!r}; expected one of {', '.join(CLIENT_TYPES)}")


def hello(session: str, transport: str, history: str = HISTORY_TMUX) -> dict[str, Any]:
    return {
        "type": HELLO,
        "session": session,
        "protocol": VERSION,
        "transport": transport,
        "history": history,
    }


def download(token: str, name: str) -> dict[str, Any]:
    return {"type": DOWNLOAD, "token": token, "name": name}


def error(message: str) -> dict[str, Any]:
    return {"type": ERROR, "message": message}


def protocol_js() -> str:
    """The ES module the browser imports: every name and limit above, nothing else."""
    shared = {
        "VERSION": VERSION,
        "HELLO": HELLO,
        "READY": READY,
        "EXIT": EXIT,
        "ERROR": ERROR,
        "PONG": PONG,
        "OUTPUT": OUTPUT,
        "CLOSED": CLOSED,
        "HISTORY": HISTORY,
        "DOWNLOAD": DOWNLOAD,
        "SCROLL": SCROLL,
        "HISTORY_TMUX": HISTORY_TMUX,
        "HISTORY_LOCAL": HISTORY_LOCAL,
        "MAX_SCROLL_LINES": MAX_SCROLL_LINES,
        "INPUT": INPUT,
        "RESIZE": RESIZE,
        "ACK": ACK,
        "PING": PING,
        "ACK_EVERY": ACK_EVERY,
        "PING_INTERVAL_SECONDS": PING_INTERVAL_SECONDS,
        "MAX_COLS": MAX_COLS,
        "MAX_ROWS": MAX_ROWS,
        "CLOSE_NORMAL": CLOSE_NORMAL,
        "CLOSE_BAD_REQUEST": CLOSE_BAD_REQUEST,
        "CLOSE_UNAUTHORIZED": CLOSE_UNAUTHORIZED,
        "CLOSE_FORBIDDEN": CLOSE_FORBIDDEN,
        "CLOSE_NO_SESSION": CLOSE_NO_SESSION,
        "CLOSE_TOO_MANY": CLOSE_TOO_MANY,
        "CLOSE_NOT_READING": CLOSE_NOT_READING,
        "CLOSE_TERMINAL_LOST": CLOSE_TERMINAL_LOST,
        "POLL_WAIT_SECONDS": POLL_WAIT_SECONDS,
    }
    return (
        "// Rendered by services/gateway/protocol.py; see PROTOCOL.md. Do not edit.\n"
        f"export const PROTOCOL = Object.freeze({json.dumps(shared, indent=2)});\n"
    )
