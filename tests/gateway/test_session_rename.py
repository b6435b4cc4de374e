"""`PATCH /api/sessions/{name}`: rename, in tmux and in the degraded PTY backend."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.conftest import Gateway
from tests.helpers import TermClient


async def rename(gw: Gateway, name: str, body: object) -> tuple[int, dict[str, object]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await gw.fetch(f"/api/sessions/{quote(name, safe='')}", "PATCH", body=raw)
    return response.code, json.loads(response.body)


async def names(gw: Gateway) -> list[str]:
    return [s["name"] for s in json.loads((await gw.fetch("/api/sessions")).body)["sessions"]]


async def test_rename_is_tmux_rename_session_and_keeps_the_shell(gateway: Gateway) -> None:
    client = await TermClient.connect(gateway.url, "main", gateway.token)
    await client.wait_ready()
    await client.type("echo before-$((6*7))\r")
    await client.wait_text("before-42")
    code, body = await rename(gateway, "main", {"name": "work_2"})
    assert code == 200, body
    assert body["session"]["name"] == "work_2"  # type: ignore[index]
    assert gateway.ctx.sessions._run("list-sessions", "-F", "#{session_name}") == ["work_2"]
    # The attached client is still on the same shell.
    await client.type("echo after-$((6*7))\r")
    await client.wait_text("after-42")
    client.close()


async def test_a_taken_name_is_a_409_and_nothing_changes(gateway: Gateway) -> None:
    assert (await gateway.fetch("/api/sessions", "POST", body=json.dumps({"name": "other"}))).code == 201
    code, body = await rename(gateway, "main", {"name": "other"})
    assert code == 409
    assert "already exists" in str(body["error"])
    assert await names(gateway) == ["main", "other"]


async def test_an_unknown_session_is_a_404(gateway: Gateway) -> None:
    code, body = await rename(gateway, "ghost", {"name": "spirit"})
    assert code == 404
    assert "ghost" in str(body["error"])
    # Exact names: `ma` must not rename `main` by tmux's prefix matching.
    assert (await rename(gateway, "ma", {"name": "x"}))[0] == 404
    assert await names(gateway) == ["main"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": "a b"}, "invalid session name"),
        ({"name": "../x"}, "invalid session name"),
        ({"name": "x" * 40}, "invalid session name"),
        ({"name": "main:0"}, "invalid session name"),
        ({"name": ""}, "invalid session name"),
        ({"name": 5}, "'name' must be a string"),
        ({}, "'name' must be a string"),
        (b"{nope", "not valid JSON"),
    ],
    ids=["space", "dots", "long", "colon", "empty", "number", "missing", "malformed"],
)
async def test_a_bad_name_is_a_400(gateway: Gateway, body: object, error: str) -> None:
    code, answer = await rename(gateway, "main", body)
    assert code == 400
    assert error in str(answer["error"])
    assert await names(gateway) == ["main"]


async def test_degraded_sessions_rename_too(degraded_gateway: Gateway) -> None:
    client = await TermClient.connect(degraded_gateway.url, "main", degraded_gateway.token)
    await client.wait_ready()
    code, body = await rename(degraded_gateway, "main", {"name": "renamed"})
    assert code == 200, body
    assert await names(degraded_gateway) == ["renamed"]
    await client.type("echo still-$((6*7))\r")
    await client.wait_text("still-42")
    assert (await degraded_gateway.fetch("/api/sessions", "POST", body=json.dumps({"name": "b"}))).code == 201
    assert (await rename(degraded_gateway, "renamed", {"name": "b"}))[0] == 409
    assert (await rename(degraded_gateway, "main", {"name": "c"}))[0] == 404
    client.close()
