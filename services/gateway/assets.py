"""The page's static files, versioned by content and precompressed, for `/static/v/<version>/...`.

index.html is served with every `/static/...` URL rewritten to `/static/v/<version>/...`, and our own
JS modules get the same rewrite of their absolute imports (third-party modules import relatively),
so one version covers the whole module graph and the browser may cache every file forever
(`immutable`): a reload asks for the HTML only. The version is a hash of every file's content, so
any change gives new URLs. Bodies are gzipped once per content hash into a cache folder in the state
dir, so a restart does not compress again.

The unversioned `/static/...` URLs keep working (revalidated on every use) for anything that names
them directly.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from services import state
from services.deploy.web_assets import AssetError, page_assets
from services.gateway import protocol

log = logging.getLogger(__name__)

PREFIX = "/static/v/"
PROTOCOL_FILE = "protocol.js"  # /js/protocol.js, rendered from protocol.py, inside the version
THIRD_PARTY = "node_modules/"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
COMPRESSIBLE = {".js", ".mjs", ".css", ".html", ".json", ".svg"}
# Absolute URLs in our own files: quoted, so prose in comments is left alone.
ABSOLUTE_STATIC = re.compile(r"""(["'`(])/static/(?!v/)""")
ABSOLUTE_PROTOCOL = re.compile(r"""(["'`])/js/protocol\.js""")


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when gzip does not make it smaller (images, tiny files)
    sha: str
    content_type: str


class StaticAssets:
    """The versioned file set; `refresh()` rebuilds it when a file changed (cheap when none did)."""

    def __init__(self, web_dir: Path, third_party_dir: Path, cache_dir: Path) -> None:
        self.web_dir = web_dir
        self.third_party_dir = third_party_dir
        self.cache_dir = cache_dir
        self.version = ""
        self.error = ""  # why the page is served unversioned (a broken node_modules)
        self._assets: dict[str, Asset] = {}
        self._signature: tuple[tuple[str, int, int], ...] = ()
        self._third_party: list[str] = []
        self._lock = threading.Lock()

    def get(self, rel: str) -> Asset | None:
        return self._assets.get(rel)

    def page(self) -> bytes:
        """index.html with its /static/ URLs inside the current version (unchanged without one)."""
        self.refresh()
        html = (self.web_dir / "index.html").read_bytes()
        if not self.version:
            return html
        return self._rewrite(html.decode("utf-8")).encode("utf-8")

    def refresh(self) -> None:
        with self._lock:
            own = self._own_files()
            if not self._third_party or self._signature_of(own, self._third_party) != self._signature:
                self._third_party = self._third_party_files()
            signature = self._signature_of(own, self._third_party)
            if signature != self._signature:
                self._build(own, signature)

    # --- building ---------------------------------------------------------------------------------

    def _own_files(self) -> list[str]:
        names = ["style.css"]
        js = self.web_dir / "js"
        if js.is_dir():
            names += sorted(p.relative_to(self.web_dir).as_posix() for p in js.rglob("*.js"))
        return [n for n in names if (self.web_dir / n).is_file()]

    def _third_party_files(self) -> list[str]:
        if self.third_party_dir.name == "vendor":  # a staged deploy: vendor holds just the page's files
            return sorted(
                p.relative_to(self.third_party_dir).as_posix()
                for p in self.third_party_dir.rglob("*")
                if p.is_file()
            )
        try:
            names = sorted(page_assets(self.web_dir))
        except AssetError as exc:
            self.error = str(exc)
            return []
        self.error = ""
        return names

    def _path(self, rel: str) -> Path:
        if rel.startswith(THIRD_PARTY):
            return self.third_party_dir / rel.removeprefix(THIRD_PARTY)
        return self.web_dir / rel

    def _signature_of(self, own: list[str], third: list[str]) -> tuple[tuple[str, int, int], ...]:
        entries = []
        for rel in own + [THIRD_PARTY + t for t in third]:
            try:
                st = self._path(rel).stat()
            except OSError:
                continue
            entries.append((rel, st.st_size, st.st_mtime_ns))
        return tuple(entries)

    def _build(self, own: list[str], signature: tuple[tuple[str, int, int], ...]) -> None:
        if self.error:
            log.error("static files served unversioned (revalidated on every load): %s", self.error)
        raw: dict[str, bytes] = {PROTOCOL_FILE: protocol.protocol_js().encode("utf-8")}
        for rel, _, _ in signature:
            raw[rel] = self._path(rel).read_bytes()
        # The version covers the raw files; our own modules are rewritten with it afterwards.
        digest = hashlib.sha256()
        for rel in sorted(raw):
            digest.update(rel.encode() + b"\0" + hashlib.sha256(raw[rel]).digest())
        version = digest.hexdigest()[:16] if not self.error else ""
        assets = {}
        for rel, body in raw.items():
            if version and rel in own and rel.endswith(".js"):
                body = self._rewrite(body.decode("utf-8"), version).encode("utf-8")
            assets[rel] = self._asset(rel, body)
        self._assets, self.version, self._signature = assets, version, signature

    def _rewrite(self, text: str, version: str | None = None) -> str:
        base = f"{PREFIX}{version or self.version}/"
        text = ABSOLUTE_STATIC.sub(lambda m: m.group(1) + base, text)
        return ABSOLUTE_PROTOCOL.sub(lambda m: m.group(1) + base + PROTOCOL_FILE, text)

    def _asset(self, rel: str, body: bytes) -> Asset:
        suffix = PurePosixPath(rel).suffix
        sha = hashlib.sha256(body).hexdigest()
        gzipped = self._gzipped(sha, body) if suffix in COMPRESSIBLE and len(body) > 512 else None
        content_type = TYPES.get(suffix, "application/octet-stream")
        return Asset(body, gzipped, sha, content_type)

    def _gzipped(self, sha: str, body: bytes) -> bytes | None:
        cached = self.cache_dir / f"{sha}.gz"
        try:
            data = cached.read_bytes()
        except OSError:
            # mtime=0: the same content always compresses to the same bytes.
            data = gzip.compress(body, compresslevel=9, mtime=0)
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                state.atomic_write_bytes(cached, data)
            except OSError as exc:
                log.warning("cannot cache compressed static file in %s: %s", self.cache_dir, exc)
        return data if len(data) < len(body) else None
