"""The proxy's HTTP side: `/a/{agent}/{family}/{path}` → upstream, streamed through unbuffered.

Agents authenticate to the proxy with a local key (their config files hold only that); the proxy
drops it and adds the real Databricks credential. Upstream answers, errors included, go back
unchanged; only failures to reach any upstream become the proxy's own 502.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from tornado import web
from tornado.iostream import StreamClosedError

from services.config import Settings
from services.model_proxy.credentials import Credentials, NoCredential
from services.model_proxy.sanitize import sanitize
from services.model_proxy.upstream import Upstreams
from services.setup.registry import FAMILIES
from services.statefiles import ModelProxyStatus, write_model_proxy_status

log = logging.getLogger("model_proxy")

# Never forwarded: the agent's stand-in key, and hop-by-hop headers this hop owns.
DROP_REQUEST = {
    "host",
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "upgrade",
}
DROP_RESPONSE = {"content-length", "connection", "keep-alive", "transfer-encoding", "server", "date"}
SECRET_QUERY = {"key", "api_key", "token"}
AGENT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
STATUS_WRITE_INTERVAL = 1.0
UPSTREAM_TIMEOUT = 900.0  # long generations stream for minutes; the agent decides when to give up


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=UPSTREAM_TIMEOUT, write=60.0, pool=30.0),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        follow_redirects=False,
        trust_env=False,  # the proxy's own upstreams only; no HTTP(S)_PROXY detours
    )


@dataclass
class AgentStats:
    requests: int = 0
    errors: int = 0
    in_flight: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    first_byte_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    via: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    last_request_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        def summary(values: deque[float]) -> dict[str, float] | None:
            if not values:
                return None
            ordered = sorted(values)
            return {
                "median": round(statistics.median(ordered), 1),
                "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
            }

        return {
            "requests": self.requests,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "latency_ms": summary(self.latencies_ms),
            "first_byte_ms": summary(self.first_byte_ms),
            "via": dict(self.via),
            "last_error": self.last_error,
            "last_request_at": self.last_request_at,
        }


@dataclass
class ProxyContext:
    settings: Settings
    key: str
    upstreams: Upstreams
    credentials: Credentials
    # One pooled client: keep-alive to the workspace saves a TLS handshake on every request.
    client: httpx.AsyncClient = field(default_factory=lambda: new_client())
    stats: dict[str, AgentStats] = field(default_factory=dict)
    _written: float = 0.0

    def status(self) -> ModelProxyStatus:
        return ModelProxyStatus(
            upstream=self.upstreams.describe(),
            credential=self.credentials.mode,
            agents={name: s.to_json() for name, s in sorted(self.stats.items())},
            now=time.time(),
        )

    def save_status(self, force: bool = False) -> None:
        """For the gateway's /api/model-proxy: the same document, at most once a second."""
        now = time.monotonic()
        if not force and now - self._written < STATUS_WRITE_INTERVAL:
            return
        self._written = now
        path, status = self.settings.files.model_proxy_status, self.status()
        if force:
            write_model_proxy_status(path, status)
        else:
            # After a request, on the event loop: the fsync must not hold up other agents' streams.
            asyncio.get_running_loop().run_in_executor(None, write_model_proxy_status, path, status)


def presented_key(handler: web.RequestHandler) -> str:
    headers = handler.request.headers
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("x-api-key") or headers.get("x-goog-api-key") or handler.get_query_argument("key", "")


class ProxyBase(web.RequestHandler):
    def initialize(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    def check_key(self) -> None:
        if not hmac.compare_digest(presented_key(self).encode(), self.ctx.key.encode()):
            raise web.HTTPError(401, "missing or wrong model proxy key (see the agent's config)")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        self.set_header("Content-Type", "application/json")
        # Shaped like the APIs' own errors so every agent shows the text.
        self.finish(
            {"type": "error", "error": {"type": "proxy_error", "message": message, "code": status_code}}
        )

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):
            log.warning(
                "%s %s → %d: %s", self.request.method, self.request.path, value.status_code, value.log_message
            )
        else:
            super().log_exception(typ, value, tb)


class StatusHandler(ProxyBase):
    def get(self) -> None:
        self.check_key()
        self.write(self.ctx.status().to_json())


class ProxyHandler(ProxyBase):
    SUPPORTED_METHODS = ("GET", "POST", "HEAD", "DELETE")

    def prepare(self) -> None:
        self._started = time.monotonic()
        self._first_byte: float | None = None
        self._upstream_status = 0
        self._client_gone = False

    def on_connection_close(self) -> None:
        self._client_gone = True

    async def head(self, agent: str, family: str, path: str) -> None:
        # Claude Code's connectivity preflight: answer it here, without a key or an upstream call.
        self._validate(agent, family)
        self.set_status(200)

    async def get(self, agent: str, family: str, path: str) -> None:
        await self._forward(agent, family, path)

    async def post(self, agent: str, family: str, path: str) -> None:
        await self._forward(agent, family, path)

    async def delete(self, agent: str, family: str, path: str) -> None:
        await self._forward(agent, family, path)

    def _validate(self, agent: str, family: str) -> None:
        if not AGENT_ID.fullmatch(agent):
            raise web.HTTPError(404, f"bad agent id {agent[:40]!r}")
        if family not in FAMILIES:
            raise web.HTTPError(404, f"unknown API family {family[:40]!r} (one of: {', '.join(FAMILIES)})")

    async def _forward(self, agent: str, family: str, path: str) -> None:
        self._validate(agent, family)
        self.check_key()
        stats = self.ctx.stats.setdefault(agent, AgentStats())
        stats.requests += 1
        stats.in_flight += 1
        stats.last_request_at = time.time()
        try:
            via = await self._send_upstream(family, path)
            stats.via[via] = stats.via.get(via, 0) + 1
            if self._upstream_status >= 400:
                stats.errors += 1
                stats.last_error = f"upstream answered {self._upstream_status} ({via})"
        except web.HTTPError as exc:
            stats.errors += 1
            stats.last_error = exc.log_message or str(exc.status_code)
            raise
        finally:
            stats.in_flight -= 1
            stats.latencies_ms.append((time.monotonic() - self._started) * 1000)
            if self._first_byte is not None:
                stats.first_byte_ms.append((self._first_byte - self._started) * 1000)
            self.ctx.save_status()

    def _request_headers(self, credential: dict[str, str]) -> list[tuple[str, str]]:
        headers = [(n, v) for n, v in self.request.headers.get_all() if n.lower() not in DROP_REQUEST]
        return headers + list(credential.items())

    async def _send_upstream(self, family: str, path: str) -> str:
        try:
            credential = await self.ctx.credentials.headers()
        except NoCredential as exc:
            raise web.HTTPError(503, str(exc)) from None
        except Exception as exc:  # token endpoint down, SP refused: say so, never hang the agent
            raise web.HTTPError(502, f"could not get a Databricks credential: {exc}") from None
        query: list[tuple[str, str | int | float | bool | None]] = [
            (k, v) for k, v in parse_qsl(self.request.query) if k not in SECRET_QUERY
        ]
        body = self.request.body
        if self.request.method == "POST":
            body = sanitize(body, self.request.headers.get("Content-Type", ""))
        failures = []
        for target in self.ctx.upstreams.targets(family, path):
            request = self.ctx.client.build_request(
                self.request.method,
                target.url,
                params=query,
                headers=self._request_headers(credential),
                content=body if self.request.method in ("POST", "PUT") else None,
            )
            try:
                response = await self.ctx.client.send(request, stream=True)
            except httpx.TransportError as exc:
                failures.append(f"{target.via}: {type(exc).__name__} {exc}".strip())
                if target.via == "gateway":
                    self.ctx.upstreams.gateway_failed(str(exc) or type(exc).__name__)
                continue
            try:
                await self._relay(response)
            finally:
                await response.aclose()
            log.info(
                "%s %s/%s via %s → %d", self.request.method, family, path, target.via, self._upstream_status
            )
            return target.via
        raise web.HTTPError(502, "no upstream answered: " + "; ".join(failures))

    async def _relay(self, response: httpx.Response) -> None:
        """Status, headers, then each chunk as it arrives; flushing waits for a slow agent to read."""
        self._upstream_status = response.status_code
        self.set_status(response.status_code, response.reason_phrase or None)
        for name, value in response.headers.multi_items():
            if name.lower() not in DROP_RESPONSE:
                self.add_header(name, value)
        try:
            async for chunk in response.aiter_raw():  # raw: content-encoding passes through as sent
                if self._first_byte is None:
                    self._first_byte = time.monotonic()
                if self._client_gone:
                    raise StreamClosedError()
                self.write(chunk)
                await self.flush()  # SSE: every event reaches the agent as soon as it arrives
        except httpx.TransportError as exc:
            # Mid-stream there is nothing sensible to retry: the agent sees the stream end early.
            log.warning("upstream stream broke after %d: %s", response.status_code, exc)
        except StreamClosedError:
            # The agent hung up (Esc interrupts a reply): normal, so one line and no traceback; the
            # caller closes the upstream response, which stops the model's generation.
            log.info("%s went away mid-stream (%s)", self.request.path.split("/")[2], self.request.path)


def access_log(handler: web.RequestHandler) -> None:
    # Tornado's default line has the query string, where Gemini-style clients may put a key.
    request = handler.request
    log.debug(
        "%d %s %s %.1f ms", handler.get_status(), request.method, request.path, 1000 * request.request_time()
    )


def make_app(ctx: ProxyContext) -> web.Application:
    init = {"ctx": ctx}
    return web.Application(
        [
            (r"/status", StatusHandler, init),
            (r"/a/([^/]+)/([^/]+)/(.*)", ProxyHandler, init),
        ],
        log_function=access_log,
    )
