"""The model proxy in-process against fake model servers: routing, credentials, streaming, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.httpserver import HTTPServer

from services.config import Settings
from services.model_proxy.app import ProxyContext, make_app
from services.model_proxy.credentials import Credentials
from services.model_proxy.sanitize import sanitize
from services.model_proxy.upstream import Upstreams
from tests.fake_models import FakeModels
from tests.helpers import async_wait_until, free_port

PAT = "dapi-owner-pat-0123456789"
KEY = "local-proxy-key"


@pytest.fixture
def serving() -> Iterator[FakeModels]:
    fake = FakeModels(tokens={PAT}).start()
    yield fake
    fake.stop()


@dataclass
class Proxy:
    url: str
    ctx: ProxyContext
    http: AsyncHTTPClient

    async def call(
        self, agent: str, path: str, body: object = None, key: str | None = KEY, **kwargs: object
    ) -> HTTPResponse:
        headers = {"Content-Type": "application/json", **(kwargs.pop("headers", {}) or {})}  # type: ignore[dict-item]
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return await self.http.fetch(
            HTTPRequest(
                f"{self.url}/a/{agent}/{path}",
                method="POST" if body is not None else "GET",
                body=json.dumps(body) if body is not None else None,
                headers=headers,
                request_timeout=30,
                **kwargs,  # type: ignore[arg-type]
            ),
            raise_error=False,
        )


@pytest.fixture
async def make_proxy(tmp_path: Path) -> AsyncIterator[object]:
    servers: list[HTTPServer] = []
    tasks: list[asyncio.Task[None]] = []
    contexts: list[ProxyContext] = []

    async def start(env: dict[str, str], probe: float = 0.1) -> Proxy:
        settings = Settings.from_env(
            {"HOME": str(tmp_path), "CODING_AGENTS_STATE_DIR": str(tmp_path / "s"), **env}
        )
        credentials = Credentials(settings)
        ctx = ProxyContext(settings, KEY, Upstreams(settings, probe, credentials.headers), credentials)
        port = free_port()
        server = HTTPServer(make_app(ctx))
        server.listen(port, "127.0.0.1")
        servers.append(server)
        contexts.append(ctx)
        tasks.append(asyncio.create_task(ctx.upstreams.watch_gateway()))
        return Proxy(f"http://127.0.0.1:{port}", ctx, AsyncHTTPClient(force_instance=True))

    yield start
    for task in tasks:
        task.cancel()
    for server in servers:
        server.stop()
    for ctx in contexts:
        await ctx.client.aclose()


ANTHROPIC = {
    "model": "databricks-claude-opus-4-6",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_each_family_reaches_its_serving_path_with_the_pat(make_proxy, serving: FakeModels) -> None:
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT})
    calls = {
        "claude/anthropic/v1/messages": ("/serving-endpoints/anthropic/v1/messages", ANTHROPIC),
        "gemini/gemini/v1beta/models/databricks-gemini-3-1-pro:generateContent": (
            "/serving-endpoints/gemini/v1beta/models/databricks-gemini-3-1-pro:generateContent",
            {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        ),
        "opencode/openai/v1/chat/completions": (
            "/serving-endpoints/chat/completions",
            {"model": "databricks-claude-opus-4-6", "messages": [{"role": "user", "content": "hi"}]},
        ),
        "codex/openai/v1/responses": ("/serving-endpoints/responses", {"model": "m", "input": "hi"}),
    }
    for path, (upstream, body) in calls.items():
        response = await proxy.call(
            path.split("/", 1)[0], path.split("/", 1)[1], body, headers={"x-api-key": KEY}
        )
        assert response.code == 200, (path, response.body)
        assert serving.answer in response.body.decode()
        seen = serving.model_calls()[-1]
        assert seen.path == upstream
        assert seen.headers["authorization"] == f"Bearer {PAT}"
        assert "x-api-key" not in seen.headers  # the local key never leaves the machine
    assert set(proxy.ctx.stats) == {"claude", "gemini", "opencode", "codex"}
    assert proxy.ctx.stats["claude"].requests == 1 and proxy.ctx.stats["claude"].errors == 0


async def test_a_wrong_or_missing_key_is_refused_before_any_upstream_call(
    make_proxy, serving: FakeModels
) -> None:
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT})
    for key in (None, "wrong"):
        response = await proxy.call("claude", "anthropic/v1/messages", ANTHROPIC, key=key)
        assert response.code == 401
        assert "model proxy key" in json.loads(response.body)["error"]["message"]
    assert serving.model_calls() == []
    unknown = await proxy.call("claude", "mistral/v1/x", ANTHROPIC)
    assert unknown.code == 404


async def test_upstream_errors_come_back_unchanged(make_proxy, serving: FakeModels) -> None:
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT})
    serving.status_override = 400
    response = await proxy.call("opencode", "openai/v1/chat/completions", {"model": "m", "messages": []})
    assert response.code == 400
    assert json.loads(response.body)["message"] == "messages: text content blocks must be non-empty"
    assert proxy.ctx.stats["opencode"].errors == 1


async def test_sse_reaches_the_agent_before_the_stream_ends(make_proxy, serving: FakeModels) -> None:
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT})
    serving.hold_after_first_event = threading.Event()
    chunks: list[bytes] = []
    fetch = asyncio.ensure_future(
        proxy.call(
            "claude", "anthropic/v1/messages", {**ANTHROPIC, "stream": True}, streaming_callback=chunks.append
        )
    )
    await async_wait_until(
        lambda: b"message_start" in b"".join(chunks), what="first SSE event through the proxy"
    )
    assert not fetch.done()  # the fake is still holding the rest of the stream
    serving.hold_after_first_event.set()
    response = await fetch
    assert response.code == 200 and b"message_stop" in b"".join(chunks)


async def test_empty_text_blocks_are_dropped_on_the_way(make_proxy, serving: FakeModels) -> None:
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT})
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": [{"type": "text", "text": " "}]},
            {"role": "user", "content": "again"},
        ],
    }
    assert (await proxy.call("opencode", "openai/v1/chat/completions", body)).code == 200
    sent = serving.model_calls()[-1].json()["messages"]
    assert sent == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "user", "content": "again"},
    ]


def test_sanitize_leaves_clean_bodies_byte_for_byte() -> None:
    body = b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}], "z": 1}'
    assert sanitize(body, "application/json") is body
    assert sanitize(b"not json", "application/json") == b"not json"
    anthropic = {
        "system": [{"type": "text", "text": ""}, {"type": "text", "text": "be brief"}],
        "messages": [],
    }
    assert json.loads(sanitize(json.dumps(anthropic).encode(), "application/json"))["system"] == [
        {"type": "text", "text": "be brief"}
    ]


async def test_gateway_while_it_answers_serving_endpoints_when_it_does_not(
    make_proxy, serving: FakeModels
) -> None:
    gateway = FakeModels(tokens={PAT}, answer="FROM-GATEWAY").start()
    try:
        proxy = await make_proxy(
            {"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT, "DATABRICKS_GATEWAY_HOST": gateway.url}
        )
        first = await proxy.call("claude", "anthropic/v1/messages", ANTHROPIC)
        assert b"FROM-GATEWAY" in first.body
        assert gateway.model_calls()[-1].path == "/anthropic/v1/messages"
        chat = await proxy.call("opencode", "openai/v1/chat/completions", {"model": "m", "messages": []})
        assert chat.code == 200 and gateway.model_calls()[-1].path == "/mlflow/v1/chat/completions"
        port = gateway.port
        gateway.stop()
        fallback = await proxy.call("claude", "anthropic/v1/messages", ANTHROPIC)
        assert fallback.code == 200 and serving.answer.encode() in fallback.body  # same request, no error
        assert not proxy.ctx.upstreams.gateway_up
        gateway.port = port
        gateway.start()
        await async_wait_until(lambda: proxy.ctx.upstreams.gateway_up, what="gateway seen again by the probe")
        back = await proxy.call("claude", "anthropic/v1/messages", ANTHROPIC)
        assert b"FROM-GATEWAY" in back.body  # switched back without a restart
        assert proxy.ctx.stats["claude"].via == {"gateway": 2, "serving": 1}
    finally:
        gateway.stop()


async def test_patless_the_proxy_uses_the_apps_oauth_token_and_refreshes_it(make_proxy) -> None:
    fake = FakeModels(clients={"app-sp": "sp-secret"}, token_lifetime=5).start()
    try:
        proxy = await make_proxy(
            {
                "DATABRICKS_HOST": fake.url,
                "DATABRICKS_CLIENT_ID": "app-sp",
                "DATABRICKS_CLIENT_SECRET": "sp-secret",
            }
        )
        assert proxy.ctx.credentials.mode == "oauth-m2m"
        for _ in range(2):
            response = await proxy.call("claude", "anthropic/v1/messages", ANTHROPIC)
            assert response.code == 200, response.body
        used = [r.headers["authorization"] for r in fake.model_calls()]
        assert all(u.startswith("Bearer m2m-token-") for u in used)
        # A 5-second token is inside the SDK's refresh window: each request got a fresh one.
        assert len(fake.issued) >= 2 and used[0] != used[1]
    finally:
        fake.stop()


async def test_no_credential_is_a_clear_503(make_proxy, serving: FakeModels) -> None:
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url})
    response = await proxy.call("claude", "anthropic/v1/messages", ANTHROPIC)
    assert response.code == 503
    assert "DATABRICKS_TOKEN" in json.loads(response.body)["error"]["message"]


async def test_tokens_never_reach_the_log_or_status(
    make_proxy, serving: FakeModels, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT})
    await proxy.call("gemini", f"gemini/v1beta/models/m:generateContent?key={KEY}&alt=sse", {"contents": []})
    assert serving.model_calls()[-1].query == {"alt": ["sse"]}  # key= never forwarded
    proxy.ctx.save_status(force=True)
    status = (proxy.ctx.settings.state_dir / "model-proxy" / "status.json").read_text()
    assert PAT not in caplog.text and KEY not in caplog.text and PAT not in status and KEY not in status
    assert json.loads(status)["agents"]["gemini"]["requests"] == 1
    start = time.monotonic()
    assert (
        await proxy.http.fetch(f"{proxy.url}/status", headers={"Authorization": f"Bearer {KEY}"})
    ).code == 200
    assert time.monotonic() - start < 5


async def test_an_agent_interrupting_a_stream_is_one_quiet_line(
    make_proxy, serving: FakeModels, caplog: pytest.LogCaptureFixture
) -> None:
    # Esc in an agent closes its connection mid-stream: no traceback, one line that says so.
    caplog.set_level(logging.INFO)
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT})
    serving.hold_after_first_event = threading.Event()
    serving.event_interval = 0.05  # events one by one, as a model streams them
    host, port = proxy.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({**ANTHROPIC, "stream": True}).encode()
    writer.write(
        b"POST /a/claude/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    seen = b""
    while b"message_start" not in seen:
        seen += await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    serving.hold_after_first_event.set()
    await async_wait_until(
        lambda: any("went away" in r.getMessage() for r in caplog.records), what="the proxy's line"
    )
    await async_wait_until(lambda: proxy.ctx.stats["claude"].in_flight == 0, what="request finished")
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert not noisy, [r.getMessage() for r in noisy]


async def test_the_workspaces_own_gateway_is_found_and_used(make_proxy) -> None:
    # No DATABRICKS_GATEWAY_HOST: the proxy finds /ai-gateway on the workspace host by itself.
    workspace = FakeModels(tokens={PAT}, ai_gateway=True).start()
    workspace.gateway_models = ["system.ai.claude-sonnet-4-6", "system.ai.gpt-5-3-codex"]
    try:
        proxy = await make_proxy({"DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": PAT})
        await async_wait_until(lambda: proxy.ctx.upstreams.gateway_up, what="the workspace's gateway found")
        calls = {
            "anthropic/v1/messages": ("claude", ANTHROPIC, "/ai-gateway/anthropic/v1/messages"),
            "gemini/v1beta/models/databricks-gemini-2-5-pro:generateContent": (
                "gemini",
                {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                "/ai-gateway/gemini/v1beta/models/databricks-gemini-2-5-pro:generateContent",
            ),
            "openai/v1/responses": ("codex", {"model": "m", "input": "hi"}, "/ai-gateway/codex/v1/responses"),
            "openai/v1/chat/completions": (
                "opencode",
                {"model": "m", "messages": []},
                "/ai-gateway/mlflow/v1/chat/completions",
            ),
        }
        for path, (agent, body, upstream) in calls.items():
            response = await proxy.call(agent, path, body)
            assert response.code == 200, (path, response.body[:300])
            assert workspace.model_calls()[-1].path == upstream
        described = proxy.ctx.status().upstream
        assert described["via"] == "gateway" and described["gateway_source"] == "workspace"
        assert "answers at" in str(described["reason"])
        # Listed as the names serving endpoints also know, so a choice works on either upstream.
        assert described["gateway_models"] == ["databricks-claude-sonnet-4-6", "databricks-gpt-5-3-codex"]
    finally:
        workspace.stop()


async def test_a_workspace_without_the_gateway_uses_serving_endpoints_and_says_why(
    make_proxy, serving: FakeModels
) -> None:
    proxy = await make_proxy({"DATABRICKS_HOST": serving.url, "DATABRICKS_TOKEN": PAT})
    await async_wait_until(
        lambda: "answered 404" in str(proxy.ctx.status().upstream["reason"]), what="the probe's verdict"
    )
    response = await proxy.call("claude", "anthropic/v1/messages", ANTHROPIC)
    assert response.code == 200
    assert serving.model_calls()[-1].path == "/serving-endpoints/anthropic/v1/messages"
    assert proxy.ctx.status().upstream["via"] == "serving"
    # Switched on later (a workspace admin enables it): found by the next probe, no restart.
    serving.ai_gateway = True
    await async_wait_until(lambda: proxy.ctx.upstreams.gateway_up, what="the gateway found later")
    await proxy.call("claude", "anthropic/v1/messages", ANTHROPIC)
    assert serving.model_calls()[-1].path == "/ai-gateway/anthropic/v1/messages"
