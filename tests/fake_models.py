"""Fake Databricks model serving (and AI Gateway): real HTTP on 127.0.0.1, recording each request.

Routes by path suffix, so one class plays the workspace's `/serving-endpoints/...` and the AI
Gateway's `/anthropic/...`, `/mlflow/v1/...` (a dedicated host) or `/ai-gateway/...` (on the
workspace host, with `ai_gateway` on): Anthropic messages, Gemini generateContent, OpenAI chat
completions and Responses, as SSE or JSON. It also plays the workspace's OIDC endpoints for
service-principal (M2M) tokens. `answer` is the text every model replies with.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class ModelRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeModels:
    answer: str = "FAKE-MODEL-ANSWER"
    tokens: set[str] = field(default_factory=set)  # accepted bearer tokens (PATs)
    clients: dict[str, str] = field(default_factory=dict)  # M2M client id → secret
    token_lifetime: int = 3600
    hold_after_first_event: threading.Event | None = None  # set by a test to release the stream
    event_interval: float = 0.0  # seconds between streamed events, as a model generating would
    status_override: int = 0  # answer every model call with this status (an upstream error)
    # Databricks' gateway on the workspace host (/ai-gateway/...); off, those paths are 404 as on a
    # workspace without it. `gateway_models` is what GET /ai-gateway/anthropic/v1/models lists.
    ai_gateway: bool = False
    gateway_models: list[str] = field(default_factory=lambda: ["system.ai.claude-sonnet-4-6"])
    requests: list[ModelRequest] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _counter: Iterator[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _open: set[socket.socket] = field(default_factory=set)  # keep-alive connections, cut on stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeModels:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Down for real: no new connections, and open keep-alive ones are cut like a dead host's."""
        if self.hold_after_first_event is not None:
            self.hold_after_first_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def model_calls(self) -> list[ModelRequest]:
        """Requests an agent made: not token fetches, nor the proxy's gateway probes and model list."""
        with self.lock:
            return [
                r
                for r in self.requests
                if not r.path.startswith(("/oidc", "/.well-known"))
                and r.method != "HEAD"
                and r.path != "/ai-gateway/anthropic/v1/models"
            ]


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data) if not isinstance(data, str) else data}\n\n".encode()


def anthropic_events(text: str, model: str) -> list[bytes]:
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    return [
        _sse("message_start", {"type": "message_start", "message": message}),
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        _sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        ),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 4},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]


def anthropic_json(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }


def gemini_json(text: str, model: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
        "modelVersion": model,
    }


def chat_chunks(text: str, model: str) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return _sse(None, body)

    usage = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    return [
        chunk({"role": "assistant", "content": text}, None),
        chunk({}, "stop"),
        _sse(None, usage),
        _sse(None, "[DONE]"),
    ]


def chat_json(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


def responses_events(text: str, model: str) -> list[bytes]:
    item = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    response = {
        "id": "resp_fake",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": "in_progress",
        "output": [],
    }
    usage = {
        "input_tokens": 3,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 7,
    }
    return [
        _sse("response.created", {"type": "response.created", "response": response}),
        _sse(
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        ),
        _sse(
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "item_id": "msg_fake",
                "output_index": 0,
                "content_index": 0,
                "delta": text,
            },
        ),
        _sse(
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": 0, "item": item},
        ),
        _sse(
            "response.completed",
            {
                "type": "response.completed",
                "response": {**response, "status": "completed", "output": [item], "usage": usage},
            },
        ),
    ]


GEMINI_CALL = re.compile(r"/models/([^/:]+):(streamGenerateContent|generateContent|countTokens)$")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeModels
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do: no 40 ms stalls on keep-alive connections

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake.lock:
            self.fake._open.add(self.connection)

    def finish(self) -> None:
        with self.fake.lock:
            self.fake._open.discard(self.connection)
        super().finish()

    def _read(self, method: str) -> ModelRequest:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        req = ModelRequest(
            method,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        with self.fake.lock:
            self.fake.requests.append(req)
        return req

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the stream ends when the connection does
        self.end_headers()
        self.close_connection = True
        for i, event in enumerate(events):
            self.wfile.write(event)
            self.wfile.flush()
            if i == 0 and self.fake.hold_after_first_event is not None:
                self.fake.hold_after_first_event.wait(30)
            if self.fake.event_interval and i < len(events) - 1:
                time.sleep(self.fake.event_interval)

    def _authorized(self, req: ModelRequest) -> bool:
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        return token in self.fake.tokens or token in self.fake.issued

    def _no_gateway(self, req: ModelRequest) -> bool:
        """A workspace without the AI Gateway: its paths are 404 (answered here)."""
        if req.path.startswith("/ai-gateway/") and not self.fake.ai_gateway:
            self._json(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "no AI Gateway here"})
            return True
        return False

    def do_HEAD(self) -> None:
        req = self._read("HEAD")
        status = 200
        if req.path.startswith("/ai-gateway/"):
            status = 404 if not self.fake.ai_gateway else 200 if self._authorized(req) else 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        req = self._read("GET")
        if req.path == "/.well-known/databricks-config":
            if not self.fake.clients:
                return self._json(404, {"error_code": "NOT_FOUND", "message": "no discovery"})
            return self._json(200, {"oidc_endpoint": f"{self.fake.url}/oidc", "workspace_id": "1234567890"})
        if self._no_gateway(req):
            return None
        if req.path == "/ai-gateway/anthropic/v1/models" and self._authorized(req):
            return self._json(200, {"data": [{"id": m, "type": "model"} for m in self.fake.gateway_models]})
        if req.path == "/oidc/.well-known/oauth-authorization-server":
            return self._json(
                200,
                {
                    "issuer": f"{self.fake.url}/oidc",
                    "token_endpoint": f"{self.fake.url}/oidc/v1/token",
                    "authorization_endpoint": f"{self.fake.url}/oidc/v1/authorize",
                },
            )
        self._json(200 if self._authorized(req) else 401, {"data": []})
        return None

    def do_POST(self) -> None:
        req = self._read("POST")
        if req.path == "/oidc/v1/token":
            self._token(req)
        elif self._no_gateway(req):
            pass
        elif not self._authorized(req):
            self._json(401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."})
        elif self.fake.status_override:
            self._json(
                self.fake.status_override,
                {"error_code": "BAD_REQUEST", "message": "messages: text content blocks must be non-empty"},
            )
        else:
            self._answer(req)

    def _answer(self, req: ModelRequest) -> None:
        """A model's answer, by the API family the path names."""
        body = req.json() if req.body else {}
        text, path = self.fake.answer, req.path
        model = body.get("model", "")
        if path.endswith("/v1/messages/count_tokens"):
            self._json(200, {"input_tokens": 3})
        elif path.endswith("/v1/messages"):
            if body.get("stream"):
                self._stream(anthropic_events(text, model))
            else:
                self._json(200, anthropic_json(text, model))
        elif match := GEMINI_CALL.search(path):
            self._answer_gemini(text, *match.groups())
        elif path.endswith("/chat/completions"):
            if body.get("stream"):
                self._stream(chat_chunks(text, model))
            else:
                self._json(200, chat_json(text, model))
        elif path.endswith("/responses"):
            self._stream(responses_events(text, model))
        else:
            self._json(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no model route for {path}"})

    def _answer_gemini(self, text: str, model: str, action: str) -> None:
        if action == "countTokens":
            self._json(200, {"totalTokens": 3})
        elif action == "streamGenerateContent":
            self._stream([_sse(None, gemini_json(text, model))])
        else:
            self._json(200, gemini_json(text, model))

    def _token(self, req: ModelRequest) -> None:
        auth = req.headers.get("authorization", "")
        client_id, secret = "", ""
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        form = parse_qs(req.body.decode())
        client_id = client_id or form.get("client_id", [""])[0]
        secret = secret or form.get("client_secret", [""])[0]
        if self.fake.clients.get(client_id) != secret or not client_id:
            return self._json(401, {"error": "invalid_client", "error_description": "bad client credentials"})
        token = f"m2m-token-{next(self.fake._counter)}"
        with self.fake.lock:
            self.fake.issued.append(token)
        self._json(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": self.fake.token_lifetime}
        )
        return None


def _handler_for(fake: FakeModels) -> type[_Handler]:
    return type("FakeModelsHandler", (_Handler,), {"fake": fake})
