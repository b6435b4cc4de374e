"""HTTP long-poll transport for proxies that block WebSockets; same channel, same semantics.

A poll connection is a TerminalChannel whose sink buffers messages until the client's next GET.
Output travels base64-encoded inside `{"type": "output"}` messages. See PROTOCOL.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from typing import Any

from services.gateway import protocol
from services.gateway.terminal import TerminalChannel

log = logging.getLogger("gateway")


class PollSink:
    """Buffers what the channel sends until the client polls; wakes a waiting poll at once."""

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._output = bytearray()  # output not yet turned into a message, coalesced
        # JSON size of the queued replies, against MAX_QUEUED_REPLY_BYTES; output is left out, as
        # flow control bounds it (backed_up) and a slow poller must not be cut off for it.
        self._queued_bytes = 0
        # A bare future, not an Event under wait_for: the answer to a keystroke is in the critical
        # path, and wait_for's extra task costs loop iterations on every wake-up.
        self._waiter: asyncio.Future[None] | None = None
        self.closed: tuple[int, str] | None = None
        self.channel: TerminalChannel | None = None

    def _flush_output(self) -> None:
        if self._output:
            data = base64.b64encode(bytes(self._output)).decode()
            self._messages.append({"type": protocol.OUTPUT, "data": data})
            self._output.clear()

    def send_json(self, message: dict[str, Any]) -> None:
        if self.closed is not None:
            return
        self._flush_output()
        size = len(json.dumps(message)) + protocol.REPLY_OVERHEAD_BYTES  # what holding it costs
        # Replies (pongs, errors) are the client's doing; one that asks without polling is cut off
        # rather than queueing them without end. Output is bounded by flow control already.
        if self._queued_bytes + size > protocol.MAX_QUEUED_REPLY_BYTES:
            self._messages.clear()
            self._queued_bytes = 0
            limit = protocol.MAX_QUEUED_REPLY_BYTES // 1024
            reason = f"client not polling: over {limit} KiB of replies waiting"
            log.warning("closing a long-poll connection: %s", reason)
            self.close(protocol.CLOSE_NOT_READING, reason)
            if self.channel is not None:
                self.channel.close()
            return
        self._queued_bytes += size
        self._messages.append(message)
        self._wake()

    def send_output(self, data: bytes) -> None:
        self._output += data
        self._wake()

    def backed_up(self) -> bool:
        return len(self._output) > protocol.HIGH_WATER

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def drain(self, wait_seconds: float) -> list[dict[str, Any]]:
        """Everything buffered, waiting up to `wait_seconds` for something to arrive."""
        if not self._messages and not self._output and self.closed is None:
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            timeout = loop.call_later(wait_seconds, self._wake)
            try:
                await self._waiter
            finally:
                timeout.cancel()
                self._waiter = None
        self._flush_output()
        messages, self._messages = self._messages, []
        self._queued_bytes = 0
        if self.closed is not None:
            code, reason = self.closed
            messages.append({"type": protocol.CLOSED, "code": code, "reason": reason})
        if self.channel is not None:
            self.channel.update_flow()
        return messages


class PollConnection:
    def __init__(self, conn_id: str, owner: str, channel: TerminalChannel, sink: PollSink) -> None:
        self.id = conn_id
        self.owner = owner
        self.channel = channel
        self.sink = sink
        self.last_seen = time.monotonic()
        self.polling = False


class PollRegistry:
    """Open long-poll connections, each bound to the principal that opened it."""

    def __init__(self, idle_timeout: float = protocol.POLL_IDLE_TIMEOUT_SECONDS) -> None:
        self._conns: dict[str, PollConnection] = {}
        self.idle_timeout = idle_timeout

    def add(self, owner: str, channel: TerminalChannel, sink: PollSink) -> PollConnection:
        conn = PollConnection(secrets.token_urlsafe(18), owner, channel, sink)
        self._conns[conn.id] = conn
        return conn

    def get(self, conn_id: str, owner: str, session: str) -> PollConnection | None:
        conn = self._conns.get(conn_id)
        if conn is None or conn.owner != owner or conn.channel.session != session:
            return None
        conn.last_seen = time.monotonic()
        return conn

    def remove(self, conn_id: str, code: int = protocol.CLOSE_NORMAL, reason: str = "closed") -> None:
        """Close a connection; a poll waiting on it returns at once with a `closed` message."""
        conn = self._conns.pop(conn_id, None)
        if conn is not None:
            conn.channel.close()
            if conn.sink.closed is None:
                conn.sink.close(code, reason)

    def expire_idle(self) -> int:
        """Close connections whose client stopped polling (tab closed, network gone)."""
        now = time.monotonic()
        stale = [
            c.id for c in self._conns.values() if not c.polling and now - c.last_seen > self.idle_timeout
        ]
        for conn_id in stale:
            self.remove(conn_id, protocol.CLOSE_TERMINAL_LOST, "idle long-poll connection expired")
        return len(stale)

    def close_all(self) -> None:
        for conn_id in list(self._conns):
            self.remove(conn_id, protocol.CLOSE_TERMINAL_LOST, "gateway stopping; reconnect")

    def channels(self) -> list[TerminalChannel]:
        return [c.channel for c in self._conns.values()]

    def __len__(self) -> int:
        return len(self._conns)
