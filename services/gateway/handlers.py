"""HTTP and WebSocket handlers. Thin: sessions live behind ctx.terminals (terminals.py), terminal
connections in terminal.py."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlencode

from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from services import state
from services.agent_models import chosen_model, tracing_available, tracing_wanted
from services.config import WEB_DIR, Settings
from services.gateway import protocol
from services.gateway.auth import Denied, Principal, bearer_token
from services.gateway.bodies import API_BODY_BYTES, body_refusal
from services.gateway.configure import configure_agent
from services.gateway.context import GatewayContext
from services.gateway.limits import LimitReached
from services.gateway.longpoll import PollSink
from services.gateway.terminal import TerminalChannel
from services.setup.registry import FAMILIES, Agent, Registry
from services.setup.status import SetupState, read_status, request_path, status_path
from services.statefiles import (
    read_model_proxy_status,
    read_tracing_status,
    save_model_choice,
    save_tracing_choice,
)
from services.supervisor_client import AlreadyRunning, SupervisorUnavailable, start_program
from services.sync import status as sync_status
from services.tmux import (
    InvalidSessionName,
    SessionExists,
    SessionNotFound,
    TmuxError,
    validate_session_name,
)
from services.version import app_version

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
log = logging.getLogger("gateway")
RETRY_AFTER_SECONDS = 2  # the usual 503 (owner lookup at start) lasts a second or two


def set_page_headers(handler: web.RequestHandler) -> None:
    """The security headers every answer carries, static files included."""
    handler.set_header("Content-Security-Policy", CSP)
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")


class AccessMixin:
    """Host, origin and identity checks shared by plain and WebSocket handlers."""

    ctx: GatewayContext
    principal: Principal | None = None
    public = False

    def _check_access(self, handler: web.RequestHandler) -> None:
        policy = self.ctx.policy
        policy.check_host(handler.request)
        if handler.request.method not in ("GET", "HEAD", "OPTIONS"):
            policy.check_origin(handler.request)
        raw = handler.get_signed_cookie(policy.cookie_name, max_age_days=policy.cookie_max_age_days)
        cookie_user = raw.decode() if raw else None
        self.principal = policy.authenticate(handler.request, cookie_user)
        # Proven by the proxy's header on a plain request: (re)issue the cookie that lets a later
        # WebSocket upgrade without identity headers in.
        renew = self.principal.fresh and cookie_user != self.principal.user
        if renew and not isinstance(handler, WebSocketHandler):
            self._remember(handler, self.principal)

    def _remember(self, handler: web.RequestHandler, principal: Principal) -> None:
        handler.set_signed_cookie(
            self.ctx.policy.cookie_name,
            principal.user,
            expires_days=self.ctx.policy.cookie_max_age_days,
            httponly=True,
            samesite="Strict",
            secure=self.ctx.policy.secure_cookie,
            path="/",
        )


@web.stream_request_body
class BaseHandler(AccessMixin, web.RequestHandler):
    max_body_bytes = API_BODY_BYTES  # per route: what its largest legitimate body needs

    def initialize(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self._body = bytearray()

    def data_received(self, chunk: bytes) -> None:
        # Tornado stops reading past max_body_bytes (body_refusal set it); this is only a backstop.
        if len(self._body) + len(chunk) <= self.max_body_bytes:
            self._body += chunk

    @property
    def body(self) -> bytes:
        return bytes(self._body)

    def set_default_headers(self) -> None:
        set_page_headers(self)
        self.set_header("Cache-Control", "no-store")

    def prepare(self) -> None:
        # Called with the headers only: the body is read after this, and not at all if it refuses.
        if not self.public:
            try:
                self._check_access(self)
            except Denied as denied:
                self.deny(denied)
                return
        refusal = body_refusal(self.request, self.max_body_bytes)
        if refusal is not None:
            self.fail(413, refusal)

    def deny(self, denied: Denied) -> None:
        self.fail(denied.status, denied.message)

    def fail(self, status: int, message: str) -> None:
        self.set_status(status)
        if status == 503:
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        if self.request.path.startswith("/api/"):
            self.finish({"error": message})
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(error_page(status, message))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message
        if self.request.path.startswith("/api/"):
            self.finish({"error": message})
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(error_page(status_code, message))

    def json_body(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            body = protocol.parse_json(self.body)
        except protocol.ProtocolError as exc:
            raise web.HTTPError(400, f"request body: {exc}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "request body must be a JSON object")
        return body


TITLES = {
    400: "Bad request",
    413: "Request too large",
    415: "Wrong content type",
    401: "Not signed in",
    403: "Not your app",
    404: "Not found",
    429: "Limit reached",
    503: "Not ready yet",
}


def error_page(status: int, message: str) -> str:
    # A 503 is temporary (owner lookup, tmux starting): the page retries by itself.
    refresh = f"<meta http-equiv=refresh content={RETRY_AFTER_SECONDS}>" if status == 503 else ""
    return (
        f"<!doctype html><meta charset=utf-8>{refresh}<title>Coding Agents</title>"
        "<style>body{font:16px system-ui;background:#111;color:#ddd;padding:3em}</style>"
        f"<h1>{status} {TITLES.get(status, '')}</h1><p>{html.escape(message)}</p>"
    )


class HealthHandler(BaseHandler):
    public = True
    max_body_bytes = 0

    def prepare(self) -> None:
        # Public (no identity), but still only under this app's own name: DNS rebinding.
        try:
            self.ctx.policy.check_host(self.request)
        except Denied as denied:
            self.deny(denied)
            return
        super().prepare()

    def get(self) -> None:
        # Public, so nothing but the overall setup state and which build answers: no step names,
        # reasons or tool versions.
        try:
            setup_state = read_status(status_path(self.ctx.settings)).state.value
        except (OSError, ValueError):
            setup_state = "unknown"
        terminals = self.ctx.terminals
        self.write(
            {
                "status": "ok",
                "version": app_version(),
                "setup": setup_state,
                # Whether shells survive a gateway restart; the reason names no secret (URLs shown bare).
                "terminal": terminals.mode,
                "terminal_reason": terminals.reason,
            }
        )


class NotFoundHandler(BaseHandler):
    """Any path no route takes: a 404 with the page headers, before or after login alike."""

    public = True
    max_body_bytes = 0

    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            raise web.HTTPError(404, "no such page")


class SetupRetryHandler(BaseHandler):
    """`POST /api/setup/retry` `{"step"?: ID}`: rerun one step, or every failed one, via supervisord."""

    async def post(self) -> None:
        step = self.json_body().get("step")
        if step is not None and not isinstance(step, str):
            raise web.HTTPError(400, "'step' must be a step id")
        settings = self.ctx.settings
        if step is not None:
            status = await self.ctx.run_blocking(read_status, status_path(settings))
            if step not in {s.id for s in status.steps}:
                raise web.HTTPError(400, f"no setup step {step[:40]!r}")
        request = {"only": [step]} if step else {"retry_failed": True}
        await self.ctx.run_blocking(state.atomic_write_json, request_path(settings), request)
        try:
            await self._start_setup()
        except AlreadyRunning:
            request_path(settings).unlink(missing_ok=True)
            raise web.HTTPError(409, "setup is already running; retry when it has finished") from None
        except SupervisorUnavailable as exc:
            request_path(settings).unlink(missing_ok=True)
            raise web.HTTPError(503, str(exc)) from None
        self.set_status(202)
        self.write({"started": True})

    async def _start_setup(self) -> None:
        """Start the setup program; a run that has written its final status but not yet exited (a
        Retry clicked the moment a step turns red) is waited for briefly instead of refused."""
        settings = self.ctx.settings
        deadline = asyncio.get_running_loop().time() + SETUP_EXIT_GRACE_SECONDS
        while True:
            try:
                await self.ctx.run_blocking(start_program, settings.files.supervisor_socket, "setup")
                return
            except AlreadyRunning:
                try:
                    finished = (await self.ctx.run_blocking(read_status, status_path(settings))).state in (
                        SetupState.DONE,
                        SetupState.FAILED,
                    )
                except (OSError, ValueError):
                    finished = False
                if not finished or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)


# How long a finished setup run may take to exit before a Retry is refused as "already running".
SETUP_EXIT_GRACE_SECONDS = 3.0
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def family_of(endpoint: str) -> str:
    name = endpoint.lower()
    return "anthropic" if "claude" in name else "gemini" if "gemini" in name else "openai"


def list_chat_endpoints(settings: Settings) -> list[str]:
    # databricks-sdk is slow to import; only this route needs it.
    from services.credentials.owner import reading_client

    client = reading_client(settings)
    names = []
    for endpoint in client.serving_endpoints.list():
        task = (endpoint.task or "").lower()
        ready = (
            endpoint.state is None or endpoint.state.ready is None or endpoint.state.ready.value == "READY"
        )
        if endpoint.name and "chat" in task and ready:
            names.append(endpoint.name)
    return sorted(names)


def gateway_offered(settings: Settings) -> list[str]:
    """The models the AI Gateway lists while the model proxy routes to it (its status file)."""
    try:
        upstream = read_model_proxy_status(settings.files.model_proxy_status).upstream
    except (OSError, ValueError):
        return []
    if upstream.get("via") != "gateway":
        return []
    return [str(m) for m in upstream.get("gateway_models") or [] if isinstance(m, str)]


class ModelsHandler(BaseHandler):
    """`GET /api/models`: the workspace's chat endpoints (and what its AI Gateway offers) by API
    family, and each agent's model."""

    async def get(self) -> None:
        from services.databricks import WorkspaceUnavailable, describe_error

        try:
            names = await self.ctx.run_blocking(list_chat_endpoints, self.ctx.settings)
        except WorkspaceUnavailable as exc:
            raise web.HTTPError(503, str(exc)) from None
        except Exception as exc:
            raise web.HTTPError(
                502, f"the workspace did not list its endpoints: {describe_error(exc)}"
            ) from None
        names = sorted(set(names) | set(await self.ctx.run_blocking(gateway_offered, self.ctx.settings)))
        families: dict[str, list[str]] = {family: [] for family in FAMILIES}
        for name in names:
            families[family_of(name)].append(name)
            if family_of(name) != "openai":
                families["openai"].append(name)  # chat completions serve every chat endpoint
        agents = await self.ctx.run_blocking(agent_views, self.ctx.settings, self.ctx.registry)
        self.write({"families": families, "agents": agents})


def agent_views(settings: Settings, registry: Registry | None) -> dict[str, dict[str, Any]]:
    """Each agent's title, family, model and tracing, read from the state files (off the loop)."""
    return {
        agent.id: {
            "title": agent.title,
            "family": agent.family,
            "model": chosen_model(settings.files, agent, os.environ),
            "tracing": tracing_view(settings, agent),
        }
        for agent in (registry.agents if registry else ())
    }


def tracing_view(settings: Settings, agent: Agent) -> dict[str, Any]:
    """What the page shows beside the agent's model: can it be traced, is it wanted, is it on (and
    into which experiment), or why not."""
    if not tracing_available(agent):
        return {"available": False}
    status = read_tracing_status(settings.files.tracing_status(agent.id))
    wanted = tracing_wanted(settings, agent)
    return {
        "available": True,
        "wanted": wanted,
        # A status from before the last switch (setup not rerun yet) does not describe this choice.
        "on": status.on and wanted == status.wanted,
        "experiment": status.experiment,
        "reason": status.reason if wanted == status.wanted else "",
    }


class AgentConfigHandler(BaseHandler):
    """A choice about one agent, saved and then applied by rewriting the agent's config."""

    def configurable_agent(self, agent_id: str) -> tuple[Registry, Agent]:
        registry = self.ctx.registry
        agent = registry.agent(agent_id) if registry else None
        if registry is None or agent is None or not agent.configurer:
            raise web.HTTPError(404, f"no configurable agent {agent_id[:40]!r}")
        return registry, agent

    async def reconfigure(self, registry: Registry, agent: Agent, what: str) -> None:
        """The configurer in its own process (services/gateway/configure.py); 500 with its reason."""
        failure = await self.ctx.run_blocking(configure_agent, registry, agent, self.ctx.attach_env)
        if failure:
            raise web.HTTPError(
                500, f"{agent.title}: the {what} is saved but its config was not rewritten: {failure}"
            )


class AgentModelHandler(AgentConfigHandler):
    """`PUT /api/agents/{id}/model` `{"model": NAME}`: rewrite that agent's config to use NAME."""

    async def put(self, agent_id: str) -> None:
        registry, agent = self.configurable_agent(agent_id)
        model = self.json_body().get("model")
        if not isinstance(model, str) or not MODEL_NAME.fullmatch(model):
            raise web.HTTPError(400, "'model' must be a serving endpoint name")
        await self.ctx.run_blocking(save_model_choice, self.ctx.settings.files.agent_models, agent.id, model)
        await self.reconfigure(registry, agent, "choice")
        self.write({"agent": agent.id, "model": model})


class AgentTracingHandler(AgentConfigHandler):
    """`PUT /api/agents/{id}/tracing` `{"on": BOOL}`: trace that agent's sessions to MLflow, or stop.

    The switch is saved (it beats CODING_AGENTS_MLFLOW_TRACING) and the agent's config rewritten; the
    answer says whether tracing is on now and, if it is wanted but off, why (no owner credentials, an
    experiment the owner may not create)."""

    async def put(self, agent_id: str) -> None:
        registry, agent = self.configurable_agent(agent_id)
        if not tracing_available(agent):
            raise web.HTTPError(409, f"{agent.title} has no MLflow tracing integration")
        on = self.json_body().get("on")
        if not isinstance(on, bool):
            raise web.HTTPError(400, "'on' must be true or false")
        await self.ctx.run_blocking(save_tracing_choice, self.ctx.settings.files.agent_tracing, agent.id, on)
        await self.reconfigure(registry, agent, "switch")
        view = await self.ctx.run_blocking(tracing_view, self.ctx.settings, agent)
        self.write({"agent": agent.id, "tracing": view})


class ModelProxyStatusHandler(BaseHandler):
    """`GET /api/model-proxy`: requests, errors and latency per agent, as the proxy last wrote them."""

    async def get(self) -> None:
        path = self.ctx.settings.files.model_proxy_status
        try:
            status = await self.ctx.run_blocking(read_model_proxy_status, path)
        except FileNotFoundError:
            raise web.HTTPError(
                503, "the model proxy has not started (scripts/ctl status model-proxy)"
            ) from None
        except (OSError, ValueError) as exc:
            raise web.HTTPError(500, f"model proxy status unreadable: {exc}") from None
        self.write(status.to_json())


class SetupStatusHandler(BaseHandler):
    """`GET /api/setup-status`: the runner's status file as written (README, "Setup status")."""

    async def get(self) -> None:
        try:
            status = await self.ctx.run_blocking(read_status, status_path(self.ctx.settings))
        except (OSError, ValueError) as exc:
            raise web.HTTPError(500, f"setup status unreadable: {exc}") from None
        self.write(status.to_json())


class SyncStatusHandler(BaseHandler):
    """`GET /api/sync`: the sync watcher's status file as written (README, "Workspace sync")."""

    async def get(self) -> None:
        path = sync_status.status_path(self.ctx.settings)
        try:
            status = await self.ctx.run_blocking(sync_status.read_status, path)
        except (OSError, ValueError) as exc:
            raise web.HTTPError(500, f"sync status unreadable: {exc}") from None
        # `now` lets the page show "synced 5 s ago" without trusting its own clock.
        self.write({**status.to_json(), "now": time.time()})


class IndexHandler(BaseHandler):
    def prepare(self) -> None:
        token = self.get_query_argument("token", None)
        if token is None or not self.ctx.policy.accepts_query_token:
            super().prepare()
            return
        # The start URL: trade the token for a cookie and take it out of the address bar.
        try:
            self.ctx.policy.check_host(self.request)
            principal = self.ctx.policy.login_with_query_token(token)
        except Denied as denied:
            self.deny(denied)
            return
        self._remember(self, principal)
        rest = {k: v[-1].decode() for k, v in self.request.query_arguments.items() if k != "token"}
        self.redirect("/" + ("?" + urlencode(rest) if rest else ""))

    def get(self) -> None:
        if self.principal is not None and self.get_signed_cookie(self.ctx.policy.cookie_name) is None:
            self._remember(self, self.principal)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        assets = self.ctx.assets
        self.write(assets.page() if assets is not None else (WEB_DIR / "index.html").read_bytes())


class ProtocolScriptHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.write(protocol.protocol_js())


def _session_name(raw: str) -> str:
    try:
        return validate_session_name(raw)
    except InvalidSessionName as exc:
        raise web.HTTPError(400, str(exc)) from None


def _tmux_unavailable(exc: TmuxError) -> web.HTTPError:
    return web.HTTPError(503, f"terminal service unavailable: {exc}")


class SessionsHandler(BaseHandler):
    async def get(self) -> None:
        terminals = self.ctx.terminals
        try:
            sessions = await terminals.list_sessions()
        except TmuxError as exc:
            raise _tmux_unavailable(exc) from None
        self.write(
            {
                "sessions": [s.to_json() for s in sessions],
                "terminal": terminals.mode,
                "terminal_reason": terminals.reason,
                "memory": self.ctx.admission.memory_json(),
            }
        )

    async def post(self) -> None:
        body = self.json_body()
        raw = body.get("name")
        if raw is not None and not isinstance(raw, str):
            raise web.HTTPError(400, "'name' must be a string")
        name = None if raw in (None, "") else _session_name(raw)
        size = protocol.Resize(120, 36)
        if "cols" in body or "rows" in body:
            try:
                size = protocol.parse_size(body.get("cols"), body.get("rows"))
            except protocol.ProtocolError as exc:
                raise web.HTTPError(400, str(exc)) from None
        terminals, admission = self.ctx.terminals, self.ctx.admission
        try:
            async with admission.starting():
                existing = {s.name for s in await terminals.list_sessions()}
                if name in existing:
                    raise SessionExists(name)  # a 409 says more than a full house would
                admission.check_session_count(len(existing))
                admission.check_memory()
                info = await terminals.create(name, size.cols, size.rows)
        except LimitReached as exc:
            raise web.HTTPError(429, str(exc)) from None
        except SessionExists as exc:
            raise web.HTTPError(409, str(exc)) from None
        except TmuxError as exc:
            raise _tmux_unavailable(exc) from None
        self.set_status(201)
        self.write({"session": info.to_json()})


class SessionHandler(BaseHandler):
    async def get(self, raw: str) -> None:
        name = _session_name(raw)
        try:
            info = await self.ctx.terminals.get(name)
        except SessionNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None
        except TmuxError as exc:
            raise _tmux_unavailable(exc) from None
        self.write({"session": info.to_json()})

    async def patch(self, raw: str) -> None:
        """`PATCH /api/sessions/{name}` `{"name": NEW}`: rename (tmux rename-session)."""
        name = _session_name(raw)
        new_name = self.json_body().get("name")
        if not isinstance(new_name, str):
            raise web.HTTPError(400, "'name' must be a string (the new session name)")
        new_name = _session_name(new_name)
        try:
            info = await self.ctx.terminals.rename(name, new_name)
        except SessionNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None
        except SessionExists as exc:
            raise web.HTTPError(409, str(exc)) from None
        except TmuxError as exc:
            raise _tmux_unavailable(exc) from None
        self.write({"session": info.to_json()})

    async def delete(self, raw: str) -> None:
        name = _session_name(raw)
        try:
            await self.ctx.terminals.kill(name)
        except SessionNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None
        except TmuxError as exc:
            raise _tmux_unavailable(exc) from None
        self.set_status(204)


class WindowsHandler(BaseHandler):
    """`POST /api/sessions/{name}/windows` `{"agent": ID}`: a new window running that agent."""

    async def post(self, raw: str) -> None:
        name = _session_name(raw)
        agent_id = self.json_body().get("agent")
        if self.ctx.registry is None:
            raise web.HTTPError(503, f"agents.yaml did not load: {self.ctx.registry_error}")
        agent = self.ctx.registry.agent(agent_id) if isinstance(agent_id, str) else None
        if agent is None:
            known = ", ".join(a.id for a in self.ctx.registry.agents)
            raise web.HTTPError(400, f"'agent' must be one of: {known}")
        terminals, admission = self.ctx.terminals, self.ctx.admission
        try:
            async with admission.starting():
                info = await terminals.get(name)
                if info.degraded:  # without tmux the agent gets a session of its own
                    admission.check_session_count(len(await terminals.list_sessions()))
                else:
                    admission.check_window_count(name, info.windows)
                admission.check_memory(agent)
                window = await terminals.new_window(name, agent.id, agent.launch)
        except LimitReached as exc:
            raise web.HTTPError(429, str(exc)) from None
        except SessionNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None
        except TmuxError as exc:
            raise _tmux_unavailable(exc) from None
        self.set_status(201)
        self.write({"window": window.to_json()})


def _query_size(handler: web.RequestHandler) -> protocol.Resize:
    cols = handler.get_query_argument("cols", None)
    rows = handler.get_query_argument("rows", None)
    if cols is None and rows is None:
        return protocol.Resize(80, 24)
    try:
        return protocol.parse_size(int(cols or ""), int(rows or ""))
    except (ValueError, protocol.ProtocolError):
        raise web.HTTPError(
            400, f"cols and rows must be whole numbers (1-{protocol.MAX_COLS}, 1-{protocol.MAX_ROWS})"
        ) from None


class WebSocketSink:
    """Sends channel output as WebSocket frames, tracking bytes not yet flushed to the socket."""

    def __init__(self, handler: TerminalSocket) -> None:
        self._handler = handler
        self.pending = 0
        self.pending_replies = 0  # replies (errors, pongs) written and not yet flushed
        self.cut_off = False  # closed for not reading its replies: nothing more is queued
        self.channel: TerminalChannel | None = None

    def _write(self, payload: str | bytes, binary: bool, reply: bool = False) -> None:
        try:
            future = self._handler.write_message(payload, binary=binary)
        except WebSocketClosedError:
            if reply:
                self.pending_replies -= 1
            return
        size = len(payload)
        self.pending += size

        def written(f: Any) -> None:
            self.pending -= size
            if reply:
                self.pending_replies -= 1
            if not f.cancelled():
                f.exception()  # consume "stream closed" so it is not logged as unretrieved
            if self.channel is not None:
                self.channel.update_flow()

        future.add_done_callback(written)

    def send_json(self, message: dict[str, Any]) -> None:
        if self.cut_off:
            return
        text = json.dumps(message)
        # Output stops at the flow-control marks; replies are the client's own doing, so a client
        # that asks without reading is cut off instead of queueing them without end. Each reply is
        # counted at what it costs to hold, not only its bytes.
        held = self.pending + (self.pending_replies + 1) * protocol.REPLY_OVERHEAD_BYTES + len(text)
        if held > protocol.MAX_QUEUED_REPLY_BYTES:
            self.cut_off = True
            limit = protocol.MAX_QUEUED_REPLY_BYTES // 1024
            reason = f"client not reading: over {limit} KiB of replies waiting"
            log.warning("closing a terminal connection to %s: %s", self._handler.request.remote_ip, reason)
            self.close(protocol.CLOSE_NOT_READING, reason)
            return
        self.pending_replies += 1
        self._write(text, binary=False, reply=True)

    def send_output(self, data: bytes) -> None:
        if not self.cut_off:
            self._write(data, binary=True)

    def backed_up(self) -> bool:
        return self.pending > protocol.LOW_WATER

    def close(self, code: int, reason: str) -> None:
        self._handler.close(code, reason)


@web.stream_request_body
class TerminalSocket(AccessMixin, WebSocketHandler):
    """`/api/sessions/{name}/ws`: the terminal transport; protocol in PROTOCOL.md."""

    channel: TerminalChannel | None = None
    sink: WebSocketSink | None = None
    _messages_since_yield = 0
    _protocol_errors = 0

    def initialize(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    def prepare(self) -> None:
        try:
            self._check_access(self)
        except Denied as denied:
            raise web.HTTPError(denied.status, denied.message) from None
        refusal = body_refusal(self.request, 0)
        if refusal is not None:
            raise web.HTTPError(413, refusal)

    def data_received(self, chunk: bytes) -> None:
        pass  # an upgrade request has no body; body_refusal capped it at nothing

    def set_default_headers(self) -> None:
        set_page_headers(self)  # the upgrade's refusals are HTTP answers a browser could render

    def check_origin(self, origin: str) -> bool:
        try:
            self.ctx.policy.check_origin(self.request)
        except Denied:
            return False
        return True

    def get_compression_options(self) -> None:
        return None  # terminal output is small and latency-bound; compression costs more than it saves

    async def open(self, *args: str, **kwargs: str) -> None:
        # Without this, Nagle holds a small frame (an echo) while an earlier one is unacknowledged,
        # until the browser's delayed ACK: 40 ms on Linux, up to 200 ms elsewhere.
        self.set_nodelay(True)
        name = _session_name(args[0])
        size = _query_size(self)
        try:
            release = self.ctx.connections.take(name)
        except LimitReached as exc:
            self.close(protocol.CLOSE_TOO_MANY, str(exc))
            return
        sink = self.sink = WebSocketSink(self)
        self.channel = TerminalChannel(self.ctx.terminals, name, size, sink, "websocket", release)
        sink.channel = self.channel
        self.ctx.channels.add(self.channel)
        await self.channel.open()

    async def get(self, *args: str, **kwargs: str) -> None:
        # Validate before the upgrade so bad names and sizes get a plain HTTP 400.
        _session_name(args[0])
        _query_size(self)
        await super().get(*args, **kwargs)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        # Tornado reads frames already buffered without returning to the loop; a flood of tiny
        # frames would starve every other connection (and /health) unless we yield now and then.
        self._messages_since_yield += 1
        if self._messages_since_yield >= MESSAGES_PER_TURN:
            self._messages_since_yield = 0
            self._handle_message(message)
            return asyncio.sleep(0)
        self._handle_message(message)
        return None

    def _handle_message(self, message: str | bytes) -> None:
        if self.channel is None or self.sink is None or self.sink.cut_off:
            return
        if isinstance(message, bytes):
            self.channel.write(message)
            return
        try:
            parsed = protocol.parse_client_message(message)
        except protocol.ProtocolError as exc:
            self._protocol_errors += 1
            if self._protocol_errors > protocol.MAX_PROTOCOL_ERRORS:
                # The page never sends a malformed message; thousands are a broken or hostile client.
                reason = f"over {protocol.MAX_PROTOCOL_ERRORS} malformed messages"
                log.warning("closing a terminal connection to %s: %s", self.request.remote_ip, reason)
                self.sink.cut_off = True
                self.close(protocol.CLOSE_BAD_REQUEST, reason)
                return
            self.sink.send_json(protocol.error(str(exc)))  # counted against the reply cap
            return
        self.channel.handle(parsed)

    def on_close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.ctx.channels.discard(self.channel)


class PollOpenHandler(BaseHandler):
    """`POST /api/sessions/{name}/poll`: open a long-poll connection (the WebSocket fallback)."""

    max_body_bytes = 0

    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            try:
                check_poll_post(self, needs_json=False)
            except Denied as denied:
                self.deny(denied)

    async def post(self, raw: str) -> None:
        assert self.principal is not None and self.ctx.polls is not None
        name = _session_name(raw)
        size = _query_size(self)
        try:
            release = self.ctx.connections.take(name)
        except LimitReached as exc:
            raise web.HTTPError(429, str(exc)) from None
        sink = PollSink()
        channel = TerminalChannel(self.ctx.terminals, name, size, sink, "longpoll", release)
        sink.channel = channel
        if not await channel.open():
            channel.close()
            status = 404 if sink.closed and sink.closed[0] == protocol.CLOSE_NO_SESSION else 503
            raise web.HTTPError(status, sink.closed[1] if sink.closed else "terminal unavailable")
        conn = self.ctx.polls.add(self.principal.user, channel, sink)
        self.set_status(201)
        self.write({"conn": conn.id})


MAX_ERRORS_SHOWN = 10
MESSAGES_PER_TURN = 32  # WebSocket frames handled before other connections get the loop


def check_poll_post(handler: BaseHandler, needs_json: bool) -> None:
    """Long-poll POSTs change a terminal: a browser must prove it is this page (Origin), and the
    body must be declared JSON, which no cross-site form or no-cors fetch can send."""
    if needs_json:
        kind = handler.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise Denied(415, "long-poll messages must be sent as Content-Type: application/json")
    # A bearer token is not sent by browsers on their own, so only cookie requests need an Origin.
    if bearer_token(handler.request) is None and "Origin" not in handler.request.headers:
        raise Denied(403, "long-poll requests from a browser must carry an Origin header")


class PollHandler(BaseHandler):
    """`GET` waits for output, `POST` sends client messages, `DELETE` closes."""

    max_body_bytes = protocol.MAX_POLL_BODY_BYTES

    def prepare(self) -> None:
        # As for the WebSocket: an answer must not wait behind an unacknowledged earlier one.
        if isinstance(self.request.connection, HTTP1Connection):
            self.request.connection.stream.set_nodelay(True)
        super().prepare()
        if self.request.method == "POST" and not self._finished:
            try:
                check_poll_post(self, needs_json=True)
            except Denied as denied:
                self.deny(denied)

    def _conn(self, raw: str, conn_id: str) -> Any:
        assert self.principal is not None and self.ctx.polls is not None
        conn = self.ctx.polls.get(conn_id, self.principal.user, _session_name(raw))
        if conn is None:
            raise web.HTTPError(404, "no such poll connection; open a new one")
        return conn

    async def get(self, raw: str, conn_id: str) -> None:
        conn = self._conn(raw, conn_id)
        conn.polling = True
        try:
            messages = await conn.sink.drain(protocol.POLL_WAIT_SECONDS)
        finally:
            conn.polling = False
        if conn.sink.closed is not None:
            assert self.ctx.polls is not None
            self.ctx.polls.remove(conn.id)
        self.write({"messages": messages})

    async def post(self, raw: str, conn_id: str) -> None:
        conn = self._conn(raw, conn_id)
        try:
            body = protocol.parse_json(self.body or b"[]")
        except protocol.ProtocolError as exc:
            raise web.HTTPError(400, f"request body: {exc}") from None
        if not isinstance(body, list):
            raise web.HTTPError(400, "request body must be a JSON array of messages")
        if len(body) > protocol.MAX_POLL_MESSAGES:
            # A page batches what was typed during one round trip: dozens, never thousands.
            raise web.HTTPError(400, f"at most {protocol.MAX_POLL_MESSAGES} messages per request")
        errors = []
        for item in body:
            try:
                conn.channel.handle(protocol.parse_client_object(item))
            except protocol.ProtocolError as exc:
                errors.append(str(exc))
        if errors:
            self.set_status(400)
            # A body of 1 MiB can hold 500k bad items: name a few, count the rest.
            shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
            more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
            self.write({"error": shown + more})
            return
        self.set_status(204)

    def delete(self, raw: str, conn_id: str) -> None:
        conn = self._conn(raw, conn_id)
        assert self.ctx.polls is not None
        self.ctx.polls.remove(conn.id)
        self.set_status(204)
