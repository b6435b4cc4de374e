"""A server that is down the slow way: connections complete (the kernel's backlog) but no byte ever
comes back, as with a firewall that drops packets. What an agent meets when an MCP server on the
internet cannot be reached from a locked-down workspace."""

from __future__ import annotations

import socket

from tests.helpers import free_port


class BlackHole:
    def __init__(self) -> None:
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)

    def url(self, path: str = "/mcp") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.sock.close()
