"""Every answer that a browser could render or run carries the page headers (issue 12, item 1): no
page, script or file of ours can be framed by another site (clickjacking), sniffed or leak its URL."""

from __future__ import annotations

import re

from tornado.httpclient import HTTPResponse
from tornado.routing import PathMatches

from services.config import WEB_DIR
from services.gateway.app import make_app
from tests.conftest import Gateway

# What the page loads from npm's folder: every /static/node_modules/ URL named in web/.
THIRD_PARTY = re.compile(r"/static/node_modules/[^\"' )]+")


def web_files() -> list[str]:
    return sorted(
        "/static/" + path.relative_to(WEB_DIR).as_posix()
        for path in WEB_DIR.rglob("*")
        if path.is_file() and "node_modules" not in path.parts and path.name != "package-lock.json"
    )


def third_party_files() -> list[str]:
    found: set[str] = set()
    for path in [WEB_DIR / "index.html", WEB_DIR / "style.css", *(WEB_DIR / "js").rglob("*.js")]:
        found.update(THIRD_PARTY.findall(path.read_text()))
    return sorted(found)


def check_page_headers(response: HTTPResponse, what: str) -> None:
    headers = response.headers
    assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), what
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") == "no-referrer", what


async def test_every_static_file_carries_the_page_headers(gateway: Gateway) -> None:
    files = web_files() + third_party_files()
    assert "/static/index.html" in files and len(third_party_files()) >= 5
    for path in files:
        response = await gateway.fetch(path)
        assert response.code == 200, (path, response.code)
        check_page_headers(response, path)


async def test_every_route_carries_the_page_headers(gateway: Gateway) -> None:
    # Every route of the application, each with a path that reaches it; a new route without an
    # entry here fails the test, so none is forgotten.
    reachable = {
        "/health": "/health",
        "/": "/",
        "/js/protocol\\.js": "/js/protocol.js",
        "/static/v/([0-9a-f]{1,64})/(.*)": "/static/v/0123abcd/js/main.js",
        "/static/node_modules/(.*)": "/static/node_modules/@xterm/xterm/lib/xterm.mjs",
        "/static/(.*)": "/static/index.html",
        "/api/setup-status": "/api/setup-status",
        "/api/setup/retry": "/api/setup/retry",
        "/api/sync": "/api/sync",
        "/api/models": "/api/models",
        "/api/model-proxy": "/api/model-proxy",
        "/api/agents/([a-z0-9-]{1,32})/model": "/api/agents/nope/model",
        "/api/agents/([a-z0-9-]{1,32})/tracing": "/api/agents/nope/tracing",
        "/api/sessions": "/api/sessions",
        "/api/credentials": "/api/credentials",
        "/api/sessions/([^/]*)": "/api/sessions/main",
        "/api/sessions/([^/]*)/ws": "/api/sessions/main/ws",
        "/api/sessions/([^/]*)/windows": "/api/sessions/main/windows",
        "/api/sessions/([^/]*)/search": "/api/sessions/main/search?q=x",
        "/api/sessions/([^/]*)/upload": "/api/sessions/main/upload",
        "/api/downloads/([A-Za-z0-9_-]{16,64})": "/api/downloads/" + "x" * 16,
        "/api/sessions/([^/]*)/poll": "/api/sessions/main/poll",
        "/api/sessions/([^/]*)/poll/([^/]+)": "/api/sessions/main/poll/nope",
    }
    app = make_app(gateway.ctx, "x")
    patterns = [
        rule.matcher.regex.pattern.rstrip("$")
        for rule in app.wildcard_router.rules
        if isinstance(rule.matcher, PathMatches)
    ]
    assert len(patterns) == len(app.wildcard_router.rules)
    assert sorted(patterns) == sorted(reachable), "a route was added: give it a path above"
    for path in reachable.values():
        # Answers of every kind: pages, scripts, JSON, errors, refusals (no identity).
        for auth in (True, False):
            response = await gateway.fetch(path, auth=auth)
            check_page_headers(response, f"{path} auth={auth} → {response.code}")
    for path in ("/static/nope.js", "/static/index.html%00.css", "/nope"):
        response = await gateway.fetch(path)
        check_page_headers(response, path)
