"""Apps mode access rule, in-process against a real tmux and the fake workspace via databricks-sdk."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError

from services.tmux import TmuxSessions
from services.version import app_version
from tests.conftest import OWNER_EMAIL, Gateway, Stack, serve_apps_gateway
from tests.fake_workspace import FakeWorkspace
from tests.helpers import TermClient, async_wait_until

PROXY_HOST = "coding-agents-test-1234.aws.databricksapps.com"
ROUTES = [
    ("GET", "/"),
    ("GET", "/static/style.css"),
    ("GET", "/js/protocol.js"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sessions/main"),
    ("POST", "/api/sessions"),
    ("DELETE", "/api/sessions/main"),
    ("POST", "/api/sessions/main/poll"),
    ("GET", "/api/sessions/main/poll/abc"),
]


def as_user(email: str | None, **extra: str) -> dict[str, str]:
    headers = {"X-Forwarded-Host": PROXY_HOST, **extra}
    if email is not None:
        headers["X-Forwarded-Email"] = email
    return headers


async def wait_owner_known(gw: Gateway, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (await gw.fetch("/api/sessions", auth=False, headers=as_user(OWNER_EMAIL))).code != 200:
        assert time.monotonic() < deadline, "the owner never became known"
        await asyncio.sleep(0.02)


async def session_cookie(gw: Gateway) -> str:
    await wait_owner_known(gw)
    response = await gw.fetch("/", auth=False, headers=as_user(OWNER_EMAIL.upper()))
    assert response.code == 200
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    return cookie.split(";", 1)[0]


async def test_health_is_public(apps_gateway: Gateway) -> None:
    response = await apps_gateway.fetch("/health", auth=False)
    assert response.code == 200
    assert json.loads(response.body) == {
        "status": "ok",
        "version": app_version(),
        "setup": "pending",
        "terminal": "tmux",
        "terminal_reason": "",
    }


@pytest.mark.parametrize("email", [OWNER_EMAIL, OWNER_EMAIL.lower(), OWNER_EMAIL.upper(), f" {OWNER_EMAIL} "])
async def test_owner_gets_in_whatever_the_case(apps_gateway: Gateway, email: str) -> None:
    await wait_owner_known(apps_gateway)
    response = await apps_gateway.fetch("/api/sessions", auth=False, headers=as_user(email))
    assert response.code == 200
    assert "main" in [s["name"] for s in json.loads(response.body)["sessions"]]


async def test_others_get_403_and_nobody_401_on_every_route(apps_gateway: Gateway) -> None:
    await wait_owner_known(apps_gateway)
    for method, path in ROUTES:
        other = await apps_gateway.fetch(path, method, auth=False, headers=as_user("mallory@example.com"))
        assert other.code == 403, (method, path)
        assert f"this app belongs to {OWNER_EMAIL}, you are mallory@example.com" in other.body.decode()
        nobody = await apps_gateway.fetch(path, method, auth=False, headers=as_user(None))
        assert nobody.code == 401, (method, path)


async def test_the_local_token_means_nothing_in_apps_mode(apps_gateway: Gateway) -> None:
    await wait_owner_known(apps_gateway)
    assert (await apps_gateway.fetch("/api/sessions")).code == 401  # Bearer local token
    response = await apps_gateway.fetch(f"/?token={apps_gateway.token}", auth=False)
    assert response.code == 401


async def test_websocket_owner_by_header_or_cookie_others_refused(apps_gateway: Gateway) -> None:
    cookie = await session_cookie(apps_gateway)
    by_header = await TermClient.connect(apps_gateway.url, "main", None, headers=as_user(OWNER_EMAIL))
    await by_header.wait_ready()
    by_header.close()
    # The proxy has been seen dropping identity headers on upgrades: the cookie carries the owner.
    by_cookie = await TermClient.connect(apps_gateway.url, "main", None, headers=as_user(None, Cookie=cookie))
    await by_cookie.wait_ready()
    await by_cookie.type("echo $((40+2))ok\r")
    await by_cookie.wait_text("42ok")
    by_cookie.close()
    refused = {
        "another user": (as_user("mallory@example.com"), 403),
        "owner cookie, another user's header": (as_user("mallory@example.com", Cookie=cookie), 403),
        "nobody": (as_user(None), 401),
        "forged cookie": (
            as_user(None, Cookie=cookie.split("=", 1)[0] + "=b3duZXI6YWxpY2VAZXhhbXBsZS5jb20="),
            401,
        ),
    }
    for label, (headers, status) in refused.items():
        with pytest.raises(HTTPClientError) as err:
            await TermClient.connect(apps_gateway.url, "main", None, headers=headers)
        assert err.value.code == status, label


async def test_cookie_alone_works_for_http_and_longpoll(apps_gateway: Gateway) -> None:
    cookie = await session_cookie(apps_gateway)
    headers = as_user(None, Cookie=cookie, Origin=f"https://{PROXY_HOST}")
    opened = await apps_gateway.fetch(
        "/api/sessions/main/poll?cols=80&rows=24", "POST", auth=False, headers=headers
    )
    assert opened.code == 201
    conn = json.loads(opened.body)["conn"]
    polled = await apps_gateway.fetch(f"/api/sessions/main/poll/{conn}", auth=False, headers=headers)
    assert polled.code == 200 and json.loads(polled.body)["messages"][0]["type"] == "hello"
    # The same connection id is useless to another user, even with the owner's cookie.
    other = as_user("mallory@example.com", Cookie=cookie)
    assert (
        await apps_gateway.fetch(f"/api/sessions/main/poll/{conn}", auth=False, headers=other)
    ).code == 403


async def test_origin_must_match_the_forwarded_host(apps_gateway: Gateway) -> None:
    await wait_owner_known(apps_gateway)
    good = as_user(OWNER_EMAIL, Origin=f"https://{PROXY_HOST}")
    bad = as_user(OWNER_EMAIL, Origin="https://evil.example.com")
    assert (
        await apps_gateway.fetch("/api/sessions", "POST", auth=False, headers=good, body=b"{}")
    ).code == 201
    assert (
        await apps_gateway.fetch("/api/sessions", "POST", auth=False, headers=bad, body=b"{}")
    ).code == 403

    async def terminal_with_bad_headers() -> None:
        client = await TermClient.connect(apps_gateway.url, "main", None, headers=bad)
        await client.wait_ready()

    with pytest.raises((HTTPClientError, WebSocketClosedError)):
        await terminal_with_bad_headers()


async def test_workspace_down_at_start_means_503_then_in_without_restart(
    stack: Stack, tmux: TmuxSessions, workspace: FakeWorkspace
) -> None:
    workspace.stop()
    async with serve_apps_gateway(stack, tmux, workspace) as gw:
        assert gw.resolver is not None
        resolver = gw.resolver
        await async_wait_until(lambda: resolver.status.attempts >= 1, what="a failed lookup")
        for path in ("/", "/api/sessions", "/static/style.css", "/js/protocol.js"):
            response = await gw.fetch(path, auth=False, headers=as_user(OWNER_EMAIL))
            assert response.code == 503, path
            assert response.headers["Retry-After"]
            assert "refused (nothing listens there)" in response.body.decode()
            assert "retrying" in response.body.decode()
        # Nobody gets in while the owner is unknown, whatever e-mail the header names.
        assert (await gw.fetch("/", auth=False, headers=as_user("mallory@example.com"))).code == 503
        with pytest.raises(HTTPClientError) as err:
            await TermClient.connect(gw.url, "main", None, headers=as_user(OWNER_EMAIL))
        assert err.value.code == 503
        workspace.start()
        await wait_owner_known(gw)


async def test_invalid_token_is_503_with_the_workspace_message(
    stack: Stack, tmux: TmuxSessions, workspace: FakeWorkspace
) -> None:
    workspace.mode = "unauthorized"
    async with serve_apps_gateway(stack, tmux, workspace) as gw:
        assert gw.resolver is not None
        resolver = gw.resolver
        await async_wait_until(lambda: resolver.status.attempts >= 1, what="a failed lookup")
        response = await gw.fetch("/api/sessions", auth=False, headers=as_user(OWNER_EMAIL))
        assert response.code == 503
        assert "Invalid access token" in json.loads(response.body)["error"]
        workspace.mode = "ok"
        await wait_owner_known(gw)
