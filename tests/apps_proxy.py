"""Databricks Apps' front door, approximated for tests: a reverse proxy on 127.0.0.1 that adds the
identity headers the real one adds after its SSO, and can swallow WebSocket upgrades the way some
proxies in front of Apps have.

Keep-alive like the real one: each request head on a client connection is rewritten (bodies are sized
by Content-Length; our clients send no chunked bodies), answers flow back byte for byte, and after a
WebSocket upgrade both directions are piped as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import uuid
from types import TracebackType

# What the real proxy sets; a client's own copies are dropped, as the real proxy does.
IDENTITY_HEADERS = (
    "x-forwarded-email",
    "x-forwarded-user",
    "x-forwarded-preferred-username",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-access-token",
    "x-real-ip",
    "x-request-id",
)
MAX_HEAD = 64 * 1024
CONTENT_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)


class AppsProxy:
    def __init__(
        self,
        upstream_port: int,
        email: str,
        public_host: str = "coding-agents-1234567890.aws.databricksapps.com",
        block_websocket: bool = False,
    ) -> None:
        self.upstream_port = upstream_port
        self.email = email
        self.public_host = public_host
        self.block_websocket = block_websocket
        self.swallowed_upgrades = 0
        self.requests: list[str] = []  # request lines, in order
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="apps-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> AppsProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def rewrite(self, head: bytes) -> tuple[bytes, bool]:
        """The request head as the app sees it, and whether it asks for a WebSocket."""
        request_line, *lines = head.decode("latin-1").split("\r\n")
        self.requests.append(request_line)
        kept: list[str] = []
        upgrade = False
        for line in lines:
            name, _, value = line.partition(":")
            lower = name.strip().lower()
            if lower in IDENTITY_HEADERS:
                continue
            if lower == "upgrade" and value.strip().lower() == "websocket":
                upgrade = True
            kept.append(line)
        name = self.email.split("@")[0]
        kept += [
            f"X-Forwarded-Email: {self.email}",
            f"X-Forwarded-User: {uuid.uuid5(uuid.NAMESPACE_DNS, self.email).hex}",
            f"X-Forwarded-Preferred-Username: {name}",
            f"X-Forwarded-Host: {self.public_host}",
            "X-Forwarded-Proto: https",
            "X-Real-Ip: 198.51.100.7",
            f"X-Request-Id: {uuid.uuid4()}",
        ]
        return ("\r\n".join([request_line, *kept]) + "\r\n\r\n").encode("latin-1"), upgrade

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        answers: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                head, upgrade = self.rewrite(raw[:-4])
                if upgrade and self.block_websocket:
                    # Accept and never answer, until the browser gives up: what a swallowing proxy does.
                    self.swallowed_upgrades += 1
                    while await reader.read(65536):
                        pass
                    return
                if upstream is None:
                    up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                    answers = asyncio.ensure_future(self._pipe(up_reader, writer, last=True))
                upstream.write(head)
                if upgrade:
                    await self._pipe(reader, upstream)
                    return
                sized = CONTENT_LENGTH.search(raw)
                if sized and int(sized.group(1)):
                    upstream.write(await reader.readexactly(int(sized.group(1))))
                await upstream.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            if answers is not None:
                answers.cancel()
            for stream in (upstream, writer):
                if stream is not None:
                    stream.close()

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, last: bool = False
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        if last:
            # The app finished its answer (or the socket): end the client's side too.
            sink.close()
        else:
            with contextlib.suppress(OSError, RuntimeError):
                sink.write_eof()
