"""A streaming multipart/form-data parser: bodies arrive in chunks and file data goes straight to a
sink, so an upload never sits whole in memory (Tornado's own parser needs the complete body)."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message
from email.parser import HeaderParser
from email.policy import HTTP

MAX_PART_HEADER_BYTES = 16 * 1024
BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,./:=?-]{1,70}")  # RFC 2046's bchars, without the space


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data; the message is safe to show."""


def boundary_of(content_type: str) -> bytes:
    """The boundary of a `multipart/form-data; boundary=...` Content-Type, or MultipartError."""
    message = Message()
    message["Content-Type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        raise MultipartError("the upload must be multipart/form-data")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not BOUNDARY.fullmatch(boundary):
        raise MultipartError("multipart/form-data needs a valid boundary parameter")
    return boundary.encode("ascii")


class MultipartParser:
    """Feed body chunks to `feed`, then call `close`. For each part, `on_part(headers)` returns a
    writer for its data (or None to skip the data), and `on_part_end()` follows its last byte."""

    def __init__(
        self,
        boundary: bytes,
        on_part: Callable[[Message], Callable[[bytes], None] | None],
        on_part_end: Callable[[], None],
    ) -> None:
        # Every delimiter but the first is preceded by CRLF; a leading CRLF makes them all alike.
        self._delimiter = b"\r\n--" + boundary
        self._buffer = b"\r\n"
        self._state = "preamble"
        self._on_part = on_part
        self._on_part_end = on_part_end
        self._writer: Callable[[bytes], None] | None = None

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while self._step():
            pass

    def close(self) -> None:
        if self._state != "done":
            raise MultipartError("the upload ended before its closing boundary (interrupted?)")

    def _step(self) -> bool:
        """Advance by one piece of the body; False when more bytes are needed."""
        states = {
            "preamble": self._preamble,
            "after-delimiter": self._after_delimiter,
            "headers": self._headers,
            "data": self._data,
        }
        step = states.get(self._state)
        return step() if step is not None else False  # done: the epilogue is ignored

    def _preamble(self) -> bool:
        index = self._buffer.find(self._delimiter)
        if index < 0:
            self._buffer = self._buffer[-len(self._delimiter) :]
            return False
        self._buffer = self._buffer[index + len(self._delimiter) :]
        self._state = "after-delimiter"
        return True

    def _after_delimiter(self) -> bool:
        if len(self._buffer) < 2:
            return False
        if self._buffer.startswith(b"--"):
            self._state, self._buffer = "done", b""
            return False
        if not self._buffer.startswith(b"\r\n"):
            raise MultipartError("malformed multipart boundary line")
        self._buffer = self._buffer[2:]
        self._state = "headers"
        return True

    def _headers(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_PART_HEADER_BYTES:
                raise MultipartError("a multipart part's headers are too long")
            return False
        raw, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        headers = HeaderParser(policy=HTTP).parsestr(raw.decode("utf-8", errors="replace"))
        self._writer = self._on_part(headers)
        self._state = "data"
        return True

    def _data(self) -> bool:
        index = self._buffer.find(self._delimiter)
        if index < 0:
            # Keep what could be the start of a delimiter split across chunks.
            keep = len(self._delimiter) - 1
            if len(self._buffer) > keep:
                self._write(self._buffer[:-keep])
                self._buffer = self._buffer[-keep:]
            return False
        self._write(self._buffer[:index])
        self._buffer = self._buffer[index + len(self._delimiter) :]
        self._on_part_end()
        self._writer = None
        self._state = "after-delimiter"
        return True

    def _write(self, data: bytes) -> None:
        if data and self._writer is not None:
            self._writer(data)
