"""A client of the long-poll transport (PROTOCOL.md) that behaves like the page's LongPollTransport.

Like a browser it keeps two HTTP/1.1 connections alive, one for the waiting GET and one for POSTs,
re-issues the GET as soon as one returns, sends input at once and batches what comes while a POST
is in flight, and acks output as it arrives. Tornado's own HTTP client opens a connection per
request, which would measure TCP handshakes rather than the transport.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import Callable
from typing import Any

from services.gateway import protocol
from tests.helpers import strip_ansi

MAX_HEADER_LINES = 100


class HttpError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


class KeepAliveConnection:
    """Sequential requests over one persistent HTTP/1.1 connection (Content-Length bodies only)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self._host, self._port = host, port
        self._headers = headers
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            # Browsers send requests with Nagle off, as the gateway sends its answers.
            self._writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        head += [f"{name}: {value}" for name, value in self._headers.items()]
        if body or method in ("POST", "PUT"):
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("the gateway closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADER_LINES):
            line = (await self._reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            raise NotImplementedError("chunked answers are not expected from the gateway")
        data = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class LongPollClient:
    """Open with `await LongPollClient.connect(...)`; output and messages are read like TermClient's."""

    def __init__(self, base_url: str, session: str, token: str | None, origin: str | None = None) -> None:
        """`token` None: no Authorization (behind the Apps proxy, which proves who we are); then,
        like a browser, an `origin` (the gateway refuses a browser's long-poll POST without one)."""
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        if origin is not None:
            headers["Origin"] = origin
        self._poller = KeepAliveConnection(host, int(port), headers)
        self._poster = KeepAliveConnection(host, int(port), headers)
        self._base = f"/api/sessions/{session}/poll"
        self._conn_path = ""
        self._outbox: list[dict[str, Any]] = []
        self._sending: asyncio.Task[None] | None = None
        self._polling: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[bytes | dict[str, Any] | None] = asyncio.Queue()
        self._unacked = 0
        self.output = bytearray()
        self.messages: list[dict[str, Any]] = []
        self.closed = False
        self.polls = 0  # GETs answered, the long-poll counterpart of WebSocket frames

    @classmethod
    async def connect(
        cls, base_url: str, session: str, token: str | None, cols: int, rows: int, origin: str | None = None
    ) -> LongPollClient:
        client = cls(base_url, session, token, origin)
        status, body = await client._poster.request("POST", f"{client._base}?cols={cols}&rows={rows}")
        if status != 201:
            raise HttpError(status, body)
        client._conn_path = f"{client._base}/{json.loads(body)['conn']}"
        client._polling = asyncio.create_task(client._poll_loop())
        return client

    async def _poll_loop(self) -> None:
        try:
            while True:
                status, body = await self._poller.request("GET", self._conn_path)
                if status != 200:
                    raise HttpError(status, body)
                self.polls += 1
                for message in json.loads(body)["messages"]:
                    if message["type"] == protocol.OUTPUT:
                        data = base64.b64decode(message["data"])
                        self._inbox.put_nowait(data)
                        self._ack(len(data))
                    elif message["type"] == protocol.CLOSED:
                        self.messages.append(message)
                        return
                    else:
                        self._inbox.put_nowait(message)
        finally:
            self.closed = True
            self._inbox.put_nowait(None)

    def _ack(self, size: int) -> None:
        self._unacked += size
        if self._unacked >= protocol.ACK_EVERY:
            self._queue({"type": protocol.ACK, "bytes": self._unacked})
            self._unacked = 0

    def _queue(self, message: dict[str, Any]) -> None:
        self._outbox.append(message)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_outbox())

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            status, body = await self._poster.request("POST", self._conn_path, json.dumps(batch).encode())
            if status != 204:
                raise HttpError(status, body)

    async def send(self, message: dict[str, Any]) -> None:
        """Queued and POSTed at once (or with the next batch); does not wait for the answer."""
        self._queue(message)

    async def type(self, text: str) -> None:
        await self.send({"type": protocol.INPUT, "data": text})

    async def next_output(self, timeout: float) -> bytes | None:
        """The next output a poll brought, or b"" after recording a message; None once closed."""
        item = await asyncio.wait_for(self._inbox.get(), timeout)
        if item is None:
            self._inbox.put_nowait(None)
            return None
        if isinstance(item, bytes):
            return item
        self.messages.append(item)
        return b""

    async def read_until(self, check: Callable[[LongPollClient], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; messages={self.messages[-5:]!r} tail={self.text[-400:]!r}")
            with contextlib.suppress(TimeoutError):
                data = await self.next_output(remaining)
                if data is None:
                    raise AssertionError(f"the connection closed: {self.messages[-3:]!r}")
                self.output += data

    async def wait_ready(self, timeout: float = 10.0) -> None:
        await self.read_until(lambda c: any(m["type"] == protocol.READY for m in c.messages), timeout)

    @property
    def text(self) -> str:
        return strip_ansi(bytes(self.output))

    async def close(self) -> None:
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await self._sending
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(BaseException):
                await self._polling
        self._poller.close()
        with contextlib.suppress(Exception):
            await self._poster.request("DELETE", self._conn_path)
        self._poster.close()
