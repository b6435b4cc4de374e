"""The files of web/node_modules the page loads, found from web/index.html, web/js and web/style.css
(every "/static/node_modules/<path>" they name) plus what those files import in turn.

The deployed app has no npm: these files are staged into web/vendor/<path>, and the gateway serves
/static/node_modules/<path> from there. A name that is not in node_modules fails the staging, since
the page would get a 404 for it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

URL_PREFIX = "/static/node_modules/"
# Quoted or url()-wrapped references in our own files; comments are scanned too (a JSDoc type import
# of a file the page does not load only costs a copy, while a missed file breaks the page).
OWN_REFERENCE = re.compile(r"""["'`(]\s*/static/node_modules/([^"'`)\s?#]+)""")
# Relative imports inside a vendored ES module (`from"./x.mjs"`, `import"./x.mjs"`, `import("./x.mjs")`)
# and url() references inside a vendored stylesheet.
MODULE_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""")
CSS_URL = re.compile(r"""url\(\s*["']?(?!data:|https?:|/)([^"')\s?#]+)""")


class AssetError(ValueError):
    """A referenced node_modules file is missing or outside node_modules; the message names both ends."""


def _own_files(web_dir: Path) -> list[Path]:
    files = [web_dir / "index.html", web_dir / "style.css"]
    files += sorted((web_dir / "js").rglob("*.js")) if (web_dir / "js").is_dir() else []
    return [f for f in files if f.is_file()]


def _normalized(rel: str, referrer: str) -> str:
    path = posixpath.normpath(rel)
    if path.startswith(("../", "/")) or path in ("..", "."):
        raise AssetError(f"{referrer} names {rel!r}, which is outside node_modules")
    return path


def page_assets(web_dir: Path) -> dict[str, str]:
    """Every node_modules file (relative path) the page needs, mapped to the first file naming it."""
    modules = web_dir / "node_modules"
    needed: dict[str, str] = {}
    queue: list[str] = []
    for own in _own_files(web_dir):
        referrer = own.relative_to(web_dir.parent).as_posix()
        for match in OWN_REFERENCE.finditer(own.read_text(encoding="utf-8")):
            rel = _normalized(match.group(1), referrer)
            if rel not in needed:
                needed[rel] = referrer
                queue.append(rel)
    while queue:
        rel = queue.pop()
        path = modules / rel
        if not path.is_file():
            raise AssetError(
                f"{needed[rel]} loads /static/node_modules/{rel}, which is not in web/node_modules "
                "(run `npm ci` in web/, or fix the path)"
            )
        if path.suffix not in (".js", ".mjs", ".css"):
            continue
        pattern = CSS_URL if path.suffix == ".css" else MODULE_IMPORT
        referrer = f"web/node_modules/{rel}"
        for match in pattern.finditer(path.read_text(encoding="utf-8", errors="replace")):
            child = _normalized(posixpath.join(posixpath.dirname(rel), match.group(1)), referrer)
            if child not in needed:
                needed[child] = referrer
                queue.append(child)
    return dict(sorted(needed.items()))
