"""Test utilities: isolated stacks, a protocol-speaking WebSocket client, polling with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from services.config import PROJECT_ROOT
from services.gateway import protocol

T = TypeVar("T")
ANSI = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[\]P][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]"
)


def strip_ansi(data: bytes) -> str:
    return ANSI.sub(b"", data).decode("utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def short_tempdir(prefix: str = "ca-") -> Path:
    # UNIX socket paths are limited to 107 bytes; pytest's tmp_path can be longer.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def wait_until(
    check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # the condition may raise until it holds
            last = exc
        else:
            if value:
                return value
            last = value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


async def async_wait_until(
    check: Callable[[], Awaitable[T]] | Callable[[], T], timeout: float = 10.0, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            last = await result if asyncio.iscoroutine(result) else result
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


def stack_env(home: Path, state_dir: Path, port: int, token: str, **extra: str) -> dict[str, str]:
    """A minimal, fully isolated environment for one copy of the system."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "CODING_AGENTS_STATE_DIR": str(state_dir),
        "DATABRICKS_APP_PORT": str(port),
        "CODING_AGENTS_TOKEN": token,
        "CODING_AGENTS_PYTHON": sys.executable,
        # The real registry installs ~1 GB of agents: tests that want setup name their own registry.
        "CODING_AGENTS_SETUP": "off",
    }
    env.update(extra)
    return env


def start_tmuxd(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.tmuxd"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class TermClient:
    """A test client speaking the wire protocol over a real WebSocket."""

    def __init__(self, conn: WebSocketClientConnection, auto_ack: bool = True) -> None:
        self.conn = conn
        self.output = bytearray()
        self.messages: list[dict[str, Any]] = []
        self.frames: list[bytes] = []
        self.auto_ack = auto_ack
        self._unacked = 0
        self.closed = False

    @classmethod
    async def connect(
        cls,
        base_url: str,
        session: str,
        token: str | None,
        cols: int = 100,
        rows: int = 30,
        headers: dict[str, str] | None = None,
        auto_ack: bool = True,
    ) -> TermClient:
        url = base_url.replace("http://", "ws://") + f"/api/sessions/{session}/ws?cols={cols}&rows={rows}"
        hdrs = dict(headers or {})
        if token is not None:
            hdrs.setdefault("Authorization", f"Bearer {token}")
        conn = await websocket_connect(HTTPRequest(url, headers=hdrs), max_message_size=64 * 1024 * 1024)
        return cls(conn, auto_ack)

    async def _read_one(self, timeout: float) -> bool:
        msg = await asyncio.wait_for(self.conn.read_message(), timeout)
        if msg is None:
            self.closed = True
            return False
        if isinstance(msg, bytes):
            self.output += msg
            self.frames.append(msg)
            self._unacked += len(msg)
            if self.auto_ack and self._unacked >= protocol.ACK_EVERY:
                await self.send({"type": protocol.ACK, "bytes": self._unacked})
                self._unacked = 0
        else:
            self.messages.append(json.loads(msg))
        return True

    async def read_until(self, check: Callable[[TermClient], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out; messages={self.messages[-5:]!r} text tail={self.text[-400:]!r}"
                )
            try:
                if not await self._read_one(remaining):
                    if check(self):
                        return
                    raise AssertionError(f"connection closed ({self.conn.close_code}); {self.messages!r}")
            except TimeoutError:
                continue

    async def wait_text(self, needle: str, timeout: float = 10.0) -> None:
        await self.read_until(lambda c: needle in c.text, timeout)

    async def wait_message(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        await self.read_until(lambda c: any(m.get("type") == kind for m in c.messages), timeout)
        return next(m for m in self.messages if m.get("type") == kind)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        await self.wait_message(protocol.READY, timeout)

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.write_message(json.dumps(message))

    async def type(self, text: str) -> None:
        await self.send({"type": protocol.INPUT, "data": text})

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await self.read_until(lambda c: c.closed, timeout)
        self.conn.close()  # release the client object too (no-op on the wire by now)
        return self.conn.close_code

    @property
    def text(self) -> str:
        return strip_ansi(bytes(self.output))

    def close(self) -> None:
        self.conn.close()


def env_for_subprocess() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "DATABRICKS_", "CODING_AGENTS_"))
    }


class FileServer:
    """Fixed payloads over real HTTP on 127.0.0.1 (404 for other paths), counting requests per path."""

    def __init__(self, files: dict[str, bytes], port: int = 0) -> None:
        """`port`: a fixed one, e.g. a URL's that was unreachable until now."""
        self.files = dict(files)
        self.requests: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] += 1
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        # A short poll interval: shutdown() waits for the serving loop's next wake-up.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

    def __enter__(self) -> FileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def path_without_tmux(folder: Path) -> str:
    """A PATH of one folder linking every system command except tmux."""
    folder.mkdir()
    for system_dir in ("/usr/local/bin", "/usr/bin", "/bin"):
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(system_dir):
                link = folder / entry.name
                if entry.name != "tmux" and not link.is_symlink():
                    link.symlink_to(entry.path)
    return str(folder)


def gzipped_system_tmux() -> tuple[bytes, str]:
    """This machine's tmux, gzipped, and the payload's sha256: a stand-in for the static build."""
    found = shutil.which("tmux")
    assert found, "the tests need tmux on PATH"
    # mtime=0: the same bytes (and checksum) on every call
    payload = gzip.compress(Path(found).read_bytes(), compresslevel=1, mtime=0)
    return payload, hashlib.sha256(payload).hexdigest()
