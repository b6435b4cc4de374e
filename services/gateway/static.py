"""Static files: the page's versioned files (assets.py), cached for good, and plain `/static/...`."""

from __future__ import annotations

from typing import Any

from tornado import web

from services.gateway.auth import Denied
from services.gateway.bodies import body_refusal
from services.gateway.context import GatewayContext
from services.gateway.handlers import (
    RETRY_AFTER_SECONDS,
    AccessMixin,
    BaseHandler,
    error_page,
    set_page_headers,
)

IMMUTABLE = "public, max-age=31536000, immutable"


@web.stream_request_body
class StaticHandler(AccessMixin, web.StaticFileHandler):
    def initialize(  # type: ignore[override]  # Tornado passes route kwargs; ctx is ours
        self, ctx: GatewayContext, path: str, default_filename: str | None = None
    ) -> None:
        self.ctx = ctx
        super().initialize(path=path, default_filename=default_filename)

    def set_default_headers(self) -> None:
        # The page itself is served from here too: it must not be framed (clickjacking) any more
        # than "/", and error answers carry the headers as well.
        set_page_headers(self)
        self.set_header("Cache-Control", "no-cache")

    def prepare(self) -> None:
        try:
            self._check_access(self)
            refusal = body_refusal(self.request, 0)
        except Denied as denied:
            self.set_status(denied.status)
            if denied.status == 503:
                self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
            self.finish(error_page(denied.status, denied.message))
            return
        if refusal is not None:
            self.set_status(413)
            self.finish(error_page(413, refusal))

    def data_received(self, chunk: bytes) -> None:
        pass  # no static route takes a body; body_refusal capped it at nothing

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        # A NUL in the URL (`index.html%00.css`) would make os.stat raise ValueError: a 500.
        if "\x00" in path:
            raise web.HTTPError(400, "a path may not contain NUL")
        return str(super().get_absolute_path(root, path))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(error_page(status_code, message))


class VersionedStaticHandler(BaseHandler):
    """`/static/v/<version>/<path>`: a page file by content version (assets.py), cached for good."""

    def get(self, version: str, rel: str) -> None:
        self._serve(version, rel, include_body=True)

    def head(self, version: str, rel: str) -> None:
        self._serve(version, rel, include_body=False)

    def _serve(self, version: str, rel: str, include_body: bool) -> None:
        assets = self.ctx.assets
        asset = assets.get(rel) if assets is not None else None
        if assets is None or asset is None:
            raise web.HTTPError(404, f"no page file {rel[:80]!r}")
        # An old page asking for an old version gets today's file, which must not be kept as the old one.
        current = version == assets.version
        self.set_header("Cache-Control", IMMUTABLE if current else "no-cache")
        self.set_header("Vary", "Accept-Encoding")
        self.set_header("Content-Type", asset.content_type)
        gzip_ok = asset.gzipped is not None and "gzip" in self.request.headers.get("Accept-Encoding", "")
        etag = f'"{asset.sha[:32]}{"-gz" if gzip_ok else ""}"'
        self.set_header("ETag", etag)
        if etag in self.request.headers.get("If-None-Match", ""):
            self.set_status(304)
            return
        body = asset.gzipped if gzip_ok and asset.gzipped is not None else asset.body
        if gzip_ok:
            self.set_header("Content-Encoding", "gzip")
        self.set_header("Content-Length", str(len(body)))
        if include_body:
            self.write(body)
