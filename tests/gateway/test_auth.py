"""Local-mode access: token, cookie, Host allowlist and Origin checks on every route but /health."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from services.version import app_version
from tests.conftest import Gateway
from tests.helpers import TermClient

ROUTES = [
    ("GET", "/"),
    ("GET", "/js/protocol.js"),
    ("GET", "/static/index.html"),
    ("GET", "/api/sessions"),
    ("POST", "/api/sessions"),
    ("GET", "/api/sessions/main"),
    ("DELETE", "/api/sessions/main"),
    ("POST", "/api/sessions/main/poll"),
    ("GET", "/api/sessions/main/poll/abc"),
    ("POST", "/api/sessions/main/poll/abc"),
    ("DELETE", "/api/sessions/main/poll/abc"),
]
ROUTE_IDS = [f"{m} {p}" for m, p in ROUTES]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_no_token_is_a_401(gateway: Gateway, method: str, path: str) -> None:
    response = await gateway.fetch(path, method, auth=False)
    assert response.code == 401


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_wrong_token_is_a_401(gateway: Gateway, method: str, path: str) -> None:
    response = await gateway.fetch(path, method, auth=False, headers={"Authorization": "Bearer nope"})
    assert response.code == 401


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_foreign_host_is_refused_even_with_the_token(gateway: Gateway, method: str, path: str) -> None:
    response = await gateway.fetch(
        path, method, headers={"Host": f"evil.example:{gateway.url.rsplit(':', 1)[1]}"}
    )
    assert response.code == 403
    assert b"not allowed" in response.body


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[0] != "GET"], ids=lambda r: str(r))
async def test_foreign_origin_is_refused_on_mutations(gateway: Gateway, method: str, path: str) -> None:
    response = await gateway.fetch(path, method, headers={"Origin": "http://evil.example"})
    assert response.code == 403
    assert b"cross-origin" in response.body


async def test_health_needs_nothing(gateway: Gateway) -> None:
    response = await gateway.fetch("/health", auth=False)
    assert response.code == 200
    assert json.loads(response.body) == {
        "status": "ok",
        "version": app_version(),
        "setup": "pending",
        "terminal": "tmux",
        "terminal_reason": "",
    }


async def test_start_url_sets_a_strict_httponly_cookie_and_strips_the_token(gateway: Gateway) -> None:
    response = await gateway.fetch(f"/?token={gateway.token}&s=main", auth=False)
    assert response.code == 302
    assert response.headers["Location"] == "/?s=main"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert gateway.token not in cookie
    jar = cookie.split(";", 1)[0]
    page = await gateway.fetch("/", auth=False, headers={"Cookie": jar})
    assert page.code == 200 and b"<html" in page.body.lower()
    api = await gateway.fetch("/api/sessions", auth=False, headers={"Cookie": jar})
    assert api.code == 200
    # The cookie also authenticates the WebSocket (browsers cannot send Authorization there).
    client = await TermClient.connect(gateway.url, "main", None, headers={"Cookie": jar})
    await client.wait_ready()
    client.close()


async def test_wrong_start_token_is_a_401_without_cookie(gateway: Gateway) -> None:
    response = await gateway.fetch("/?token=wrong", auth=False)
    assert response.code == 401
    assert "Set-Cookie" not in response.headers


async def test_forged_cookie_is_refused(gateway: Gateway) -> None:
    name = gateway.ctx.policy.cookie_name
    response = await gateway.fetch("/api/sessions", auth=False, headers={"Cookie": f"{name}=local:deadbeef"})
    assert response.code == 401


async def test_pages_carry_security_headers(gateway: Gateway) -> None:
    response = await gateway.fetch("/")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def ws_url(gateway: Gateway) -> str:
    return gateway.url.replace("http://", "ws://") + "/api/sessions/main/ws"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Bearer {token}", "Origin": "http://evil.example"}, 403),
        ({"Authorization": "Bearer {token}", "Origin": "null"}, 403),
        ({"Authorization": "Bearer {token}", "Host": "evil.example"}, 403),
    ],
    ids=["no-token", "wrong-token", "foreign-origin", "null-origin", "foreign-host"],
)
async def test_websocket_upgrade_is_checked(gateway: Gateway, headers: dict[str, str], status: int) -> None:
    filled = {k: v.format(token=gateway.token) for k, v in headers.items()}
    with pytest.raises(HTTPClientError) as err:
        await websocket_connect(HTTPRequest(ws_url(gateway), headers=filled))
    assert err.value.code == status


async def test_same_origin_websocket_is_allowed(gateway: Gateway) -> None:
    client = await TermClient.connect(gateway.url, "main", gateway.token, headers={"Origin": gateway.url})
    await client.wait_ready()
    client.close()
