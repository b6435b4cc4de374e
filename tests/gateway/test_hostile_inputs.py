"""Hostile and odd inputs from issue 12 (item 4): each gets a clear answer and the gateway serves on."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.gateway import protocol
from tests import abuse
from tests.conftest import OWNER_EMAIL, Gateway
from tests.gateway.test_apps_mode import PROXY_HOST, wait_owner_known
from tests.helpers import TermClient, async_wait_until


async def type_until_seen(client: TermClient, line: str, answer: str, tries: int = 5) -> None:
    """Bash itself may drop typeahead while it handles a burst of SIGINTs; what matters is that the
    terminal still answers, so the line is typed again (a bounded number of times) until it does."""
    for attempt in range(tries):
        await client.type("\x15" + line)  # Ctrl-U: start from an empty line
        try:
            await client.wait_text(answer, timeout=5)
            return
        except AssertionError:
            if client.closed or attempt == tries - 1:
                raise


async def open_poll(gateway: Gateway) -> str:
    response = await gateway.fetch("/api/sessions/main/poll", "POST")
    assert response.code == 201, response.body
    return str(json.loads(response.body)["conn"])


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_ctrl_c_right_after_ready_does_not_kill_the_attach_client(gateway: Gateway) -> None:
    for _ in range(5):  # the window is a few ms after `ready`: try it more than once
        client = await TermClient.connect(gateway.url, "main", gateway.token)
        # Sent before `ready` arrives, so the gateway takes it the moment the attach client starts
        # (on_message waits for open()): the earliest a page's Ctrl-C can come.
        for _ in range(20):
            await client.conn.write_message(b"\x03", binary=True)
        await client.wait_ready()
        await type_until_seen(client, "echo $((20+3))alive\r", "23alive")
        assert not client.closed
        assert not any(m.get("type") == protocol.ERROR for m in client.messages), client.messages
        client.close()


async def test_deeply_nested_json_over_websocket_is_an_error_and_the_socket_stays(gateway: Gateway) -> None:
    client = await TermClient.connect(gateway.url, "main", gateway.token)
    await client.wait_ready()
    await client.conn.write_message(nested(100_000))
    error = await client.wait_message(protocol.ERROR)
    assert "nested too deeply" in error["message"]
    await client.type("echo $((30+4))still\r")
    await client.wait_text("34still")
    client.close()


async def test_deeply_nested_json_over_long_poll_is_a_400(gateway: Gateway) -> None:
    conn_id = await open_poll(gateway)
    try:
        response = await gateway.fetch(
            f"/api/sessions/main/poll/{conn_id}",
            "POST",
            body=nested(100_000).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert response.code == 400
        assert "nested too deeply" in json.loads(response.body)["error"]
        for path in ("/api/sessions", "/api/setup/retry"):
            response = await gateway.fetch(path, "POST", body=b'{"a":' * 5000 + b"1" + b"}" * 5000)
            assert response.code == 400, path
            assert "nested too deeply" in json.loads(response.body)["error"]
    finally:
        await gateway.fetch(f"/api/sessions/main/poll/{conn_id}", "DELETE")


async def test_nul_in_a_static_path_is_a_400_not_a_500(gateway: Gateway) -> None:
    for path in ("/static/index.html%00.css", "/static/node_modules/%00", "/static/js/%00main.js"):
        response = await gateway.fetch(path)
        assert response.code in (400, 404), (path, response.code)
        assert b"NUL" in response.body or response.code == 404


async def test_long_poll_posts_need_json_and_an_origin_from_browsers(gateway: Gateway) -> None:
    conn_id = await open_poll(gateway)
    try:
        url = f"/api/sessions/main/poll/{conn_id}"
        ping = json.dumps([{"type": "ping"}]).encode()
        response = await gateway.fetch(url, "POST", body=ping, headers={"Content-Type": "text/plain"})
        assert response.code == 415
        assert "application/json" in json.loads(response.body)["error"]
        response = await gateway.fetch(url, "POST", body=ping, headers={"Content-Type": "application/json"})
        assert response.code == 204
        # A browser (cookie, no bearer token) must send an Origin, and it must be this site.
        cookie = await login_cookie(gateway)
        for origin, status in ((None, 403), ("http://evil.example", 403), (gateway.url, 404)):
            headers = {"Content-Type": "application/json", "Cookie": cookie}
            if origin is not None:
                headers["Origin"] = origin
            # The conn id belongs to the bearer principal's fingerprint, which the cookie shares;
            # a 404 for another id proves the checks passed.
            response = await gateway.fetch(url + "x", "POST", auth=False, body=ping, headers=headers)
            assert response.code == status, (origin, response.body)
            response = await gateway.fetch("/api/sessions/main/poll", "POST", auth=False, headers=headers)
            assert response.code == (201 if status == 404 else status), (origin, response.body)
    finally:
        await gateway.fetch(f"/api/sessions/main/poll/{conn_id}", "DELETE")


async def login_cookie(gateway: Gateway) -> str:
    response = await gateway.fetch(f"/?token={gateway.token}", auth=False)
    assert response.code == 302
    return response.headers["Set-Cookie"].split(";")[0]


async def test_health_checks_the_host(gateway: Gateway) -> None:
    port = gateway.url.rsplit(":", 1)[1]
    response = await gateway.fetch("/health", auth=False, headers={"Host": f"evil.example:{port}"})
    assert response.code == 403
    response = await gateway.fetch("/health", auth=False)
    assert response.code == 200


async def test_a_client_that_never_reads_its_replies_is_cut_off(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    port = int(gateway.url.rsplit(":", 1)[1])
    headers = {"Authorization": f"Bearer {gateway.token}"}
    sock = await asyncio.to_thread(abuse.websocket, port, "/api/sessions/main/ws", headers)
    try:
        # Pings, each answered with a 16-byte pong the client does not read: 600k are 9.6 MB of
        # replies, far past the cap plus what the kernel holds for the client.
        frame = abuse.text_frame(b'{"type":"ping"}')
        await asyncio.to_thread(abuse.flood_frames, sock, frame, 600_000, 90.0)
        await async_wait_until(lambda: "client not reading" in caplog.text, timeout=90, what="cut-off")
        # A client that reads again finds the reason in the close frame (Tornado resets the
        # connection 5 s after the close frame if the client never answers it).
        code = await asyncio.to_thread(abuse.close_code, sock, 30.0)
        assert code == protocol.CLOSE_NOT_READING
    finally:
        sock.close()
    await async_wait_until(lambda: not gateway.ctx.channels, timeout=30, what="channel closed")
    response = await gateway.fetch("/health", auth=False)
    assert response.code == 200


async def test_a_long_poll_client_that_never_polls_its_pongs_is_cut_off(gateway: Gateway) -> None:
    conn_id = await open_poll(gateway)
    url = f"/api/sessions/main/poll/{conn_id}"
    as_json = {"Content-Type": "application/json"}
    too_many = json.dumps([{"type": "ping"}] * 1001).encode()
    response = await gateway.fetch(url, "POST", body=too_many, headers=as_json)
    assert response.code == 400 and "at most 1000" in json.loads(response.body)["error"]
    pings = json.dumps([{"type": "ping"}] * 1000).encode()  # ~16 KiB of pongs per POST
    for _ in range(100):  # 1.6 MB of pongs asked for, never polled
        response = await gateway.fetch(url, "POST", body=pings, headers=as_json)
        assert response.code == 204
    response = await gateway.fetch(url)
    assert response.code == 200
    closed = json.loads(response.body)["messages"][-1]
    assert closed["type"] == protocol.CLOSED and closed["code"] == protocol.CLOSE_NOT_READING, closed
    assert "not polling" in closed["reason"]
    assert len(json.loads(response.body)["messages"]) < 70_000  # the queue was dropped at the cap


async def test_the_platforms_forwarded_host_is_the_last_entry(apps_gateway: Gateway) -> None:
    await wait_owner_known(apps_gateway)
    spoofed = {"X-Forwarded-Email": OWNER_EMAIL, "X-Forwarded-Host": f"evil.example, {PROXY_HOST}"}
    for origin, status in ((f"https://{PROXY_HOST}", 201), ("https://evil.example", 403)):
        body = json.dumps({"name": f"fh{status}"}).encode()
        response = await apps_gateway.fetch(
            "/api/sessions", "POST", auth=False, body=body, headers={**spoofed, "Origin": origin}
        )
        assert response.code == status, (origin, response.body)


async def refused_before_the_body(port: int, method: str, path: str, headers: dict[str, str]) -> int | None:
    """Send only the headers of a 4 MiB request: the answer must come without the body."""
    head = abuse.request_head(method, path, port, {"Content-Length": str(4 << 20), **headers})

    def attempt() -> int | None:
        with abuse.connect(port) as sock:
            sock.sendall(head)
            return abuse.read_status(sock, timeout=10)

    return await asyncio.to_thread(attempt)


async def test_unauthenticated_bodies_are_refused_before_they_are_read(gateway: Gateway) -> None:
    port = int(gateway.url.rsplit(":", 1)[1])
    for method, path in (
        ("POST", "/api/sessions"),
        ("POST", "/api/sessions/main/poll/x"),
        ("PUT", "/api/agents/claude/model"),
        ("POST", "/static/index.html"),
        ("POST", "/health"),
        ("GET", "/api/sessions/main/ws"),
    ):
        assert await refused_before_the_body(port, method, path, {}) in (401, 413), path
    # Logged in, a body over the route's cap is refused from its Content-Length alone.
    bearer = {"Authorization": f"Bearer {gateway.token}", "Content-Type": "application/json"}
    assert await refused_before_the_body(port, "POST", "/api/sessions", bearer) == 413
    assert await refused_before_the_body(port, "POST", "/api/sessions/main/poll/x", bearer) == 413
    response = await gateway.fetch("/api/sessions", "POST", body=b" " * (65 * 1024))
    assert response.code == 413 and "64 KiB" in json.loads(response.body)["error"]


async def test_a_non_owner_body_is_refused_before_it_is_read(apps_gateway: Gateway) -> None:
    await wait_owner_known(apps_gateway)
    port = int(apps_gateway.url.rsplit(":", 1)[1])
    mallory = {"X-Forwarded-Email": "mallory@example.com", "X-Forwarded-Host": PROXY_HOST}
    assert await refused_before_the_body(port, "POST", "/api/sessions", mallory) == 403


async def test_a_client_sending_only_garbage_is_closed_after_a_thousand_errors(gateway: Gateway) -> None:
    port = int(gateway.url.rsplit(":", 1)[1])
    headers = {"Authorization": f"Bearer {gateway.token}"}
    sock = await asyncio.to_thread(abuse.websocket, port, "/api/sessions/main/ws", headers)
    try:
        await asyncio.to_thread(abuse.flood_frames, sock, abuse.text_frame(b"x"), 2000, 30.0)
        code = await asyncio.to_thread(abuse.close_code, sock, 30.0)
        assert code == protocol.CLOSE_BAD_REQUEST
    finally:
        sock.close()
    response = await gateway.fetch("/health", auth=False)
    assert response.code == 200
