"""Static files: versioned by content, gzipped once, cached for good; the page itself never cached."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

from services.config import WEB_DIR
from services.deploy.web_assets import page_assets
from services.gateway.app import third_party_dir
from services.gateway.assets import StaticAssets
from tests.conftest import Gateway

IMMUTABLE = "public, max-age=31536000, immutable"


def versioned_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def assert_page_headers(headers: object) -> None:
    get = headers.get  # type: ignore[attr-defined]
    assert "default-src 'self'" in get("Content-Security-Policy")
    assert get("X-Frame-Options") == "DENY"
    assert get("X-Content-Type-Options") == "nosniff"
    assert get("Referrer-Policy") == "no-referrer"


async def test_page_is_no_store_and_names_versioned_files(gateway: Gateway) -> None:
    response = await gateway.fetch("/")
    assert response.code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert_page_headers(response.headers)
    urls = versioned_urls(response.body.decode())
    version = gateway.ctx.assets.version  # type: ignore[union-attr]
    assert version and len(urls) == 3
    assert all(url.startswith(f"/static/v/{version}/") for url in urls), urls


async def test_versioned_files_are_gzipped_immutable_and_keep_the_headers(gateway: Gateway) -> None:
    html = (await gateway.fetch("/")).body.decode()
    for url in versioned_urls(html):
        response = await gateway.fetch(
            url, headers={"Accept-Encoding": "gzip, br"}, decompress_response=False
        )
        assert response.code == 200, url
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert_page_headers(response.headers)
        rel = url.split("/", 4)[4]
        source = (
            (third_party_dir() / rel.removeprefix("node_modules/"))
            if "node_modules/" in rel
            else WEB_DIR / rel
        )
        body = gzip.decompress(response.body)
        assert len(response.body) < len(body)
        if rel.endswith(".css"):
            assert body == source.read_bytes()
        # The same ETag answers 304 without a body.
        again = await gateway.fetch(
            url, headers={"Accept-Encoding": "gzip", "If-None-Match": response.headers["ETag"]}
        )
        assert again.code == 304


async def test_modules_import_inside_the_version_so_a_reload_asks_for_nothing(gateway: Gateway) -> None:
    version = gateway.ctx.assets.version  # type: ignore[union-attr]
    response = await gateway.fetch(f"/static/v/{version}/js/terminal.js")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    body = response.body.decode()
    imports = re.findall(r'^import .* from "([^"]+)";$', body, re.M)
    assert f"/static/v/{version}/node_modules/@xterm/xterm/lib/xterm.mjs" in imports
    assert f"/static/v/{version}/protocol.js" in imports
    assert all(i.startswith((f"/static/v/{version}/", "./")) for i in imports), imports
    proto = await gateway.fetch(f"/static/v/{version}/protocol.js")
    assert proto.code == 200 and "export const PROTOCOL" in proto.body.decode()
    # Without gzip in Accept-Encoding: the plain body.
    plain = await gateway.fetch(
        f"/static/v/{version}/js/main.js", headers={"Accept-Encoding": "identity"}, decompress_response=False
    )
    assert "Content-Encoding" not in plain.headers and plain.body.startswith(b"// @ts-check\n/**")


async def test_unknown_files_are_404_and_an_old_version_is_not_cached(gateway: Gateway) -> None:
    version = gateway.ctx.assets.version  # type: ignore[union-attr]
    for rel in ("js/nope.js", "../pyproject.toml", "node_modules/../../README.md", "index.html"):
        assert (await gateway.fetch(f"/static/v/{version}/{rel}")).code == 404, rel
    old = await gateway.fetch("/static/v/0123456789abcdef/style.css")
    assert old.code == 200
    assert old.headers["Cache-Control"] == "no-cache"


async def test_unversioned_static_files_still_work_with_the_headers(gateway: Gateway) -> None:
    response = await gateway.fetch("/static/style.css")
    assert response.code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert_page_headers(response.headers)


def test_a_changed_file_changes_the_version_and_compression_is_cached(tmp_path: Path) -> None:
    web = tmp_path / "web"
    shutil.copytree(WEB_DIR / "js", web / "js")
    shutil.copy(WEB_DIR / "index.html", web / "index.html")
    shutil.copy(WEB_DIR / "style.css", web / "style.css")
    (web / "node_modules").symlink_to(third_party_dir())
    cache = tmp_path / "cache"
    assets = StaticAssets(web, web / "node_modules", cache)
    assets.refresh()
    first = assets.version
    assert first and not assets.error
    cached = sorted(cache.glob("*.gz"))
    assert len(cached) >= 10
    assets.refresh()
    assert assets.version == first
    (web / "style.css").write_text((web / "style.css").read_text() + "\n/* changed */\n")
    assert f"/static/v/{first}/" not in assets.page().decode()
    assert assets.version != first
    # A fresh start reuses the compressed files (same content, same names).
    before = {p: p.stat().st_mtime_ns for p in cached}
    again = StaticAssets(web, web / "node_modules", cache)
    again.refresh()
    assert {p: p.stat().st_mtime_ns for p in cached} == before


def test_a_staged_deploy_versions_its_vendor_folder(tmp_path: Path) -> None:
    # As services.deploy stages it: web/vendor holds the page's node_modules files, no node_modules.
    web = tmp_path / "web"
    shutil.copytree(WEB_DIR / "js", web / "js")
    shutil.copy(WEB_DIR / "index.html", web / "index.html")
    shutil.copy(WEB_DIR / "style.css", web / "style.css")
    for rel in page_assets(WEB_DIR):
        (web / "vendor" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(WEB_DIR / "node_modules" / rel, web / "vendor" / rel)
    assets = StaticAssets(web, web / "vendor", tmp_path / "cache")
    assets.refresh()
    assert assets.version and not assets.error
    xterm = assets.get("node_modules/@xterm/xterm/lib/xterm.mjs")
    assert xterm is not None and xterm.gzipped is not None
    assert f"/static/v/{assets.version}/js/main.js" in assets.page().decode()
