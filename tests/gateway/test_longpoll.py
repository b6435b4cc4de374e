"""The HTTP long-poll fallback: same channel and semantics as the WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from services.gateway import protocol
from tests.conftest import Gateway
from tests.helpers import async_wait_until, strip_ansi

JSON = {"Content-Type": "application/json"}  # as the page sends them; anything else is a 415


class PollClient:
    def __init__(self, gateway: Gateway, session: str, conn: str) -> None:
        self.gw = gateway
        self.base = f"/api/sessions/{session}/poll/{conn}"
        self.output = bytearray()
        self.messages: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, gateway: Gateway, session: str = "main") -> PollClient:
        response = await gateway.fetch(f"/api/sessions/{session}/poll?cols=100&rows=30", "POST")
        assert response.code == 201, response.body
        return cls(gateway, session, json.loads(response.body)["conn"])

    async def poll(self) -> list[dict[str, Any]]:
        response = await self.gw.fetch(self.base, request_timeout=protocol.POLL_WAIT_SECONDS + 5)
        assert response.code == 200, response.body
        messages = json.loads(response.body)["messages"]
        for m in messages:
            if m["type"] == protocol.OUTPUT:
                self.output += base64.b64decode(m["data"])
            else:
                self.messages.append(m)
        return messages

    async def send(self, *messages: dict[str, Any]) -> int:
        response = await self.gw.fetch(self.base, "POST", body=json.dumps(list(messages)), headers=JSON)
        return response.code

    async def poll_until_text(self, needle: str, polls: int = 50) -> None:
        for _ in range(polls):
            if needle in strip_ansi(bytes(self.output)):
                return
            await self.poll()
        raise AssertionError(f"{needle!r} not in {strip_ansi(bytes(self.output))[-300:]!r}")


async def test_type_and_read_over_long_poll(gateway: Gateway) -> None:
    client = await PollClient.open(gateway)
    await client.poll()
    assert client.messages[0] == {
        "type": "hello",
        "session": "main",
        "protocol": 1,
        "transport": "longpoll",
        "history": "tmux",
    }
    while not any(m["type"] == "ready" for m in client.messages):
        await client.poll()
    assert await client.send({"type": "input", "data": "echo $((20+3))poll\r"}) == 204
    await client.poll_until_text("23poll")
    assert await client.send({"type": "ack", "bytes": len(client.output)}, {"type": "ping"}) == 204
    await client.poll()
    assert any(m["type"] == "pong" for m in client.messages)
    assert (await gateway.fetch(client.base, "DELETE")).code == 204
    assert (await gateway.fetch(client.base)).code == 404


async def test_long_poll_reattach_shows_history(gateway: Gateway) -> None:
    first = await PollClient.open(gateway)
    await first.send({"type": "input", "data": "echo $((4000+4))again\r"})
    await first.poll_until_text("4004again")
    await gateway.fetch(first.base, "DELETE")
    second = await PollClient.open(gateway)
    await second.poll_until_text("4004again", polls=3)


async def test_session_end_reaches_the_poller(gateway: Gateway) -> None:
    await gateway.ctx.run_blocking(gateway.ctx.sessions.create, "short")
    client = await PollClient.open(gateway, "short")
    await client.poll()
    await client.send({"type": "input", "data": "exit\r"})
    for _ in range(50):
        await client.poll()
        if any(m["type"] == "closed" for m in client.messages):
            break
    kinds = [m["type"] for m in client.messages]
    assert "exit" in kinds
    assert client.messages[-1] == {"type": "closed", "code": protocol.CLOSE_NORMAL, "reason": "session ended"}
    assert (await gateway.fetch(client.base)).code == 404


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{bad", "not valid JSON"),
        (b'{"type":"input"}', "JSON array"),
        (b'[{"type":"nope"}]', "unknown message type"),
        (b'[{"type":"resize","cols":0,"rows":1}]', "cols"),
    ],
    ids=["malformed", "object", "unknown", "resize-zero"],
)
async def test_bad_client_messages_are_a_400(gateway: Gateway, body: bytes, error: str) -> None:
    client = await PollClient.open(gateway)
    response = await gateway.fetch(client.base, "POST", body=body, headers=JSON)
    assert response.code == 400
    assert error in json.loads(response.body)["error"]
    assert await client.send({"type": "input", "data": "echo $((5*5))ok\r"}) == 204
    await client.poll_until_text("25ok")


async def test_unknown_connection_and_session(gateway: Gateway) -> None:
    assert (await gateway.fetch("/api/sessions/main/poll/nope")).code == 404
    response = await gateway.fetch("/api/sessions/ghost/poll", "POST")
    assert response.code == 404
    client = await PollClient.open(gateway)
    # A connection id is only valid with the session it was opened for.
    wrong = client.base.replace("/main/", "/other/")
    assert (await gateway.fetch(wrong)).code == 404


async def test_delete_wakes_a_waiting_poll(gateway: Gateway) -> None:
    client = await PollClient.open(gateway)
    polls = gateway.ctx.polls
    assert polls is not None
    # Poll until one has nothing to return and parks (tmux's attach redraw may still be arriving).
    for _ in range(50):
        waiting = asyncio.ensure_future(client.poll())
        await async_wait_until(
            lambda w=waiting: w.done() or any(c.polling for c in polls._conns.values()),
            what="poll answered or parked",
        )
        if not waiting.done():
            break
    else:
        raise AssertionError("no poll ever parked")
    assert (await gateway.fetch(client.base, "DELETE")).code == 204
    messages = await asyncio.wait_for(waiting, 5)  # not the 25 s long-poll wait
    assert messages[-1]["type"] == protocol.CLOSED


async def test_idle_connections_expire(gateway: Gateway) -> None:
    client = await PollClient.open(gateway)
    assert gateway.ctx.polls is not None
    gateway.ctx.polls.idle_timeout = 0
    assert gateway.ctx.polls.expire_idle() == 1
    assert (await gateway.fetch(client.base)).code == 404
