"""Request bodies are read only once access is decided, and never past a per-route cap.

Every handler streams its body (`@stream_request_body`), so Tornado calls `prepare` as soon as the
headers are in: an unauthenticated request is answered and its connection closed before a byte of
its body is read, and an authenticated one learns its body is too big from the Content-Length alone.
"""

from __future__ import annotations

from tornado.http1connection import HTTP1Connection
from tornado.httputil import HTTPServerRequest

# The largest JSON body of the REST API (a session name and size, an agent or model id) is < 1 KiB.
API_BODY_BYTES = 64 * 1024


def body_refusal(request: HTTPServerRequest, limit: int) -> str | None:
    """Why this request's body is refused before it is read, or None; also caps what Tornado reads
    (a chunked body that grows past `limit` is cut off with a 400 and the connection closed)."""
    if isinstance(request.connection, HTTP1Connection):
        request.connection.set_max_body_size(limit)
    declared = request.headers.get("Content-Length")
    if declared is None:
        return None
    try:
        length = int(declared)
    except ValueError:
        return "Content-Length is not a number"
    if length <= limit:
        return None
    if limit == 0:
        return f"{request.method} {request.path[:100]} takes no request body"
    return f"request body over {limit // 1024} KiB (this route's limit); send less"
