"""`POST /api/sessions/{name}/upload`: files dropped or pasted onto a terminal, saved in ~/uploads.

The body is read as it streams (multipart.py) into hidden temporary files, and only after the
access check, the session lookup and the size check in `prepare` have passed; the server's small
default body limit applies until then.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from email.message import Message
from pathlib import Path

from tornado import web
from tornado.http1connection import HTTP1Connection

from services.gateway.handlers import BaseHandler, _session_name
from services.gateway.multipart import MultipartError, MultipartParser, boundary_of
from services.gateway.upload_names import place, sanitize_filename
from services.tmux import SessionNotFound, TmuxError

MAX_FILES = 100


def uploads_dir(home: Path) -> Path:
    return home / "uploads"


class _Incoming:
    """One file part being received into a hidden temporary file."""

    def __init__(self, folder: Path, name: str) -> None:
        fd, path = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")  # mode 0600
        self.fd: int | None = fd
        self.path = Path(path)
        self.name = name

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def place_all(files: list[_Incoming], folder: Path) -> list[str]:
    """Name every received file; all or none (a failure removes those already named)."""
    paths: list[Path] = []
    try:
        for incoming in files:
            incoming.close()
            paths.append(place(incoming.path, folder, incoming.name))
    except OSError:
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return [str(path) for path in paths]


@web.stream_request_body
class UploadHandler(BaseHandler):
    """Multipart, one or more files → 201 `{"paths": [...]}`; README "Files in and out"."""

    parser: MultipartParser | None = None

    @property
    def max_body_bytes(self) -> int:  # type: ignore[override]  # per instance: from the settings
        # Above the upload limit, so that prepare() below answers an oversize upload with its own
        # clear 413 (BaseHandler's cap would refuse anything over the REST API's 64 KiB).
        return int(self.ctx.settings.upload_limit_bytes) + 1024 * 1024

    async def prepare(self) -> None:  # type: ignore[override]  # Tornado awaits an async prepare
        self.received = 0
        self.files: list[_Incoming] = []
        super().prepare()  # access: refused requests end here, before any of the body is read
        if self._finished or self.request.method != "POST":
            return
        try:
            name = _session_name(self.path_args[0])
            await self.ctx.terminals.get(name)
        except web.HTTPError as exc:
            self.fail(exc.status_code, exc.log_message or "bad request")
            return
        except SessionNotFound as exc:
            self.fail(404, str(exc))
            return
        except TmuxError as exc:
            self.fail(503, f"terminal service unavailable: {exc}")
            return
        try:
            boundary = boundary_of(self.request.headers.get("Content-Type", ""))
        except MultipartError as exc:
            self.fail(415, str(exc))
            return
        self.limit = self.ctx.settings.upload_limit_bytes
        declared = self.request.headers.get("Content-Length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            self.fail(413, self._too_large())
            return
        if isinstance(self.request.connection, HTTP1Connection):
            # Above our own count, which answers a clear 413 where Tornado's check just says 400.
            self.request.connection.set_max_body_size(self.limit + 1024 * 1024)
        self.folder = uploads_dir(self.ctx.settings.home)
        try:
            await self.ctx.run_blocking(lambda: self.folder.mkdir(mode=0o700, parents=True, exist_ok=True))
        except OSError as exc:
            self.fail(500, f"cannot create {self.folder}: {exc.strerror}")
            return
        self.parser = MultipartParser(boundary, self._on_part, self._on_part_end)

    def _too_large(self) -> str:
        mib = self.ctx.settings.upload_limit_bytes // (1024 * 1024)
        return f"the upload is larger than {mib} MiB (CODING_AGENTS_UPLOAD_LIMIT_MB sets the limit)"

    def _on_part(self, headers: Message) -> Callable[[bytes], None] | None:
        filename = headers.get_filename()
        if filename is None:
            return None  # a plain form field: nothing to save
        if len(self.files) >= MAX_FILES:
            raise MultipartError(f"at most {MAX_FILES} files per upload")
        incoming = _Incoming(self.folder, sanitize_filename(filename))
        self.files.append(incoming)
        return incoming.write

    def _on_part_end(self) -> None:
        if self.files:
            self.files[-1].close()

    def data_received(self, chunk: bytes) -> None:
        if self._finished or self.parser is None:
            return
        self.received += len(chunk)
        if self.received > self.limit:
            self._abandon(413, self._too_large())
            return
        try:
            self.parser.feed(chunk)
        except MultipartError as exc:
            self._abandon(400, str(exc))
        except OSError as exc:
            self._abandon(507 if exc.errno == 28 else 500, f"cannot save the upload: {exc.strerror}")

    def _abandon(self, status: int, message: str) -> None:
        self._discard_all()
        self.fail(status, message)

    def _discard_all(self) -> None:
        for incoming in self.files:
            incoming.discard()
        self.files.clear()

    def on_connection_close(self) -> None:
        self._discard_all()  # the browser went away mid-upload: no half files left behind

    def get(self, raw: str) -> None:
        """Where uploads go and how large one may be, so the page can refuse a file before sending it."""
        _session_name(raw)
        self.write(
            {
                "folder": str(uploads_dir(self.ctx.settings.home)),
                "limit_bytes": self.ctx.settings.upload_limit_bytes,
            }
        )

    async def post(self, raw: str) -> None:
        if self._finished or self.parser is None:
            return
        try:
            self.parser.close()
        except MultipartError as exc:
            self._abandon(400, str(exc))
            return
        if not self.files:
            self.fail(400, "the upload holds no files (send them as multipart file parts)")
            return
        try:
            paths = await self.ctx.run_blocking(place_all, self.files, self.folder)
        except OSError as exc:
            self._abandon(500, f"cannot save the upload: {exc}")
            return
        self.files.clear()
        self.set_status(201)
        self.write({"paths": paths})
