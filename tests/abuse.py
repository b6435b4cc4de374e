"""Hostile clients on raw sockets, for the tests and `scripts/bench abuse`: they do exactly what a
well-behaved client library would refuse to (never read, half-send, flood), bounded in count and time."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time


def connect(port: int, timeout: float = 10.0, small_buffer: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffer:  # before connecting, so the window is negotiated small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_status(sock: socket.socket, timeout: float) -> int | None:
    """The status code of the answer on `sock`, or None if the connection closed without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
    except (ConnectionResetError, TimeoutError):
        return None
    return int(data.split(b" ", 2)[1])


def websocket(port: int, path: str, headers: dict[str, str]) -> socket.socket:
    """A WebSocket upgraded by hand: the caller owns the raw socket and may never read from it.
    Its receive buffer is small, so what piles up for it piles up in the gateway, not the kernel."""
    sock = connect(port, small_buffer=True)
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
        **headers,
    }
    sock.sendall(request_head("GET", path, port, upgrade))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the handshake is consumed here
        if not chunk:
            raise ConnectionError("closed during the WebSocket handshake")
        head += chunk
    status_line = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status_line:
        raise ConnectionError(f"upgrade refused: {status_line!r}")
    return sock


def text_frame(payload: bytes) -> bytes:
    """One masked client text frame (clients must mask), for payloads under 64 KiB."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = bytes([0x81, 0x80 | length])
    else:
        header = bytes([0x81, 0x80 | 126]) + struct.pack("!H", length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def flood_frames(sock: socket.socket, frame: bytes, count: int, seconds: float, batch: int = 1000) -> int:
    """Send `frame` up to `count` times within `seconds` without reading; how many went out before
    the gateway stopped taking them (closed or reset the connection) or the bounds were reached."""
    deadline = time.monotonic() + seconds
    sock.settimeout(max(0.1, seconds))
    chunk = frame * batch
    sent = 0
    try:
        while sent < count and time.monotonic() < deadline:
            sock.sendall(chunk)
            sent += batch
    except OSError:  # reset, broken pipe or a send that timed out: the gateway stopped taking them
        pass
    return sent


def close_code(sock: socket.socket, timeout: float) -> int | None:
    """Read what the gateway sent until its close frame; its code, or None if none came in time."""
    deadline = time.monotonic() + timeout
    buffer = b""
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        # Walk whole frames (server frames are unmasked) until a close frame (opcode 8).
        while len(buffer) >= 2:
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, offset = struct.unpack("!H", buffer[2:4])[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
            if len(buffer) < offset + length:
                break
            if opcode == 8:
                return int(struct.unpack("!H", buffer[offset : offset + 2])[0]) if length >= 2 else 1005
            buffer = buffer[offset + length :]
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except OSError:
            return None
        if not chunk:
            return None
        buffer += chunk
    return None
