"""Static files: the page's versioned files (assets.py), cached for good, and plain `/static/...`."""

from __future__ import annotations

from tornado import web

from services.gateway.auth import Denied
from services.gateway.context import GatewayContext
from services.gateway.handlers import (
    RETRY_AFTER_SECONDS,
    AccessMixin,
    BaseHandler,
    error_page,
    set_page_headers,
)

IMMUTABLE = "public, max-age=31536000, immutable"


class StaticHandler(AccessMixin, web.StaticFileHandler):
    def initialize(  # type: ignore[override]  # Tornado passes route kwargs; ctx is ours
        self, ctx: GatewayContext, path: str, default_filename: str | None = None
    ) -> None:
        self.ctx = ctx
        super().initialize(path=path, default_filename=default_filename)

    def prepare(self) -> None:
        try:
            self._check_access(self)
        except Denied as denied:
            self.set_status(denied.status)
            if denied.status == 503:
                self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
            self.finish(error_page(denied.status, denied.message))

    def set_extra_headers(self, path: str) -> None:
        set_page_headers(self)
        self.set_header("Cache-Control", "no-cache")


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
