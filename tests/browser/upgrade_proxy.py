"""A reverse proxy on 127.0.0.1 that forwards plain HTTP and swallows WebSocket upgrades.

Some corporate proxies do exactly this: the upgrade request is accepted and never answered, so the
browser's WebSocket sits "connecting". Flip `block_upgrades` off and upgrades pass like any request.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from typing import Self

UPGRADE = re.compile(rb"^upgrade:\s*websocket\s*$", re.IGNORECASE | re.MULTILINE)
MAX_HEAD = 64 * 1024


class UpgradeSwallowingProxy:
    """Runs its own event loop in a thread, since Playwright's sync API owns the test's thread.

    Each new connection's first request decides: an upgrade while blocking is held open unanswered;
    anything else is piped to the upstream byte for byte (keep-alive requests that follow on the
    same connection too: browsers never send an upgrade on a pooled HTTP connection).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.block_upgrades = True
        self.swallowed = 0  # upgrade requests held unanswered
        self.passed_upgrades = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            if UPGRADE.search(head):
                if self.block_upgrades:
                    self.swallowed += 1
                    while await reader.read(MAX_HEAD):  # hold it until the browser gives up
                        pass
                    return
                self.passed_upgrades += 1
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            upstream.write(head)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(MAX_HEAD):
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(ConnectionError, OSError):
        if sink.can_write_eof():
            sink.write_eof()
