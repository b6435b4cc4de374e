"""The Tornado application: routes and settings, built fresh from a GatewayContext."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tornado import web
from tornado.log import access_log

from services import redact
from services.config import WEB_DIR, WEB_NODE_MODULES_DIR, WEB_VENDOR_DIR
from services.gateway import credentials, downloads, handlers, protocol, search, static, uploads
from services.gateway.assets import StaticAssets
from services.gateway.context import GatewayContext

SESSION = r"/api/sessions/([^/]*)"


def third_party_dir() -> Path:
    """Where `/static/node_modules/...` is served from: a staged deploy's web/vendor, else npm's folder."""
    return WEB_VENDOR_DIR if WEB_VENDOR_DIR.is_dir() else WEB_NODE_MODULES_DIR


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log line, except for long-poll requests that went well: two per keystroke
    and hundreds per flood would bury everything else, and the line cost ~15% of each request.
    Query values are masked: the start URL carries the token (`/?token=…`)."""
    status = handler.get_status()
    if isinstance(handler, handlers.PollHandler) and status < 400:
        return
    log = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    request = handler.request
    summary = f"{request.method} {redact.uri(request.uri or '')} ({request.remote_ip})"
    log("%d %s %.2fms", status, summary, 1000 * request.request_time())


# Header and body deadlines: a half-sent request holds a connection (and its buffers) only this long.
# The header timeout is also how long a keep-alive connection may idle between requests.
HEADER_TIMEOUT_SECONDS = 15.0
BODY_TIMEOUT_SECONDS = 30.0
# Connections the kernel queues before we accept them. Tornado's 128 overflows under a burst of
# connections, and the SYN the kernel then drops (a /health probe's, a user's) is retried only 1 s later.
LISTEN_BACKLOG = 1024
MAX_HEADER_BYTES = 32 * 1024  # the Apps proxy's identity headers and a JWT fit several times over


def server_options() -> dict[str, Any]:
    """HTTPServer keyword arguments: every request's size and time is bounded before any handler."""
    return {
        "xheaders": False,
        "idle_connection_timeout": HEADER_TIMEOUT_SECONDS,
        "body_timeout": BODY_TIMEOUT_SECONDS,
        "max_header_size": MAX_HEADER_BYTES,
        # The largest body any route takes; each handler lowers it to its own cap before reading.
        "max_body_size": protocol.MAX_POLL_BODY_BYTES,
        # A read buffer that holds one maximal WebSocket frame plus what arrives behind it.
        "max_buffer_size": 2 * protocol.MAX_MESSAGE_BYTES,
    }


def make_app(ctx: GatewayContext, cookie_secret: str) -> web.Application:
    if ctx.assets is None:
        ctx.assets = StaticAssets(WEB_DIR, third_party_dir(), ctx.settings.files.static_cache)
        ctx.assets.refresh()  # hashed and compressed once, here, not on the first page load
    init: dict[str, object] = {"ctx": ctx}
    routes: list[tuple[str, type[web.RequestHandler], dict[str, object]]] = [
        (r"/health", handlers.HealthHandler, init),
        (r"/", handlers.IndexHandler, init),
        (r"/js/protocol\.js", handlers.ProtocolScriptHandler, init),
        (r"/static/v/([0-9a-f]{1,64})/(.*)", static.VersionedStaticHandler, init),
        (r"/static/node_modules/(.*)", static.StaticHandler, {**init, "path": str(third_party_dir())}),
        (r"/static/(.*)", static.StaticHandler, {**init, "path": str(WEB_DIR)}),
        (r"/api/setup-status", handlers.SetupStatusHandler, init),
        (r"/api/setup/retry", handlers.SetupRetryHandler, init),
        (r"/api/sync", handlers.SyncStatusHandler, init),
        (r"/api/models", handlers.ModelsHandler, init),
        (r"/api/model-proxy", handlers.ModelProxyStatusHandler, init),
        (r"/api/agents/([a-z0-9-]{1,32})/model", handlers.AgentModelHandler, init),
        (r"/api/agents/([a-z0-9-]{1,32})/tracing", handlers.AgentTracingHandler, init),
        (r"/api/sessions", handlers.SessionsHandler, init),
        (r"/api/credentials", credentials.CredentialsHandler, init),
        (downloads.TOKEN_ROUTE, downloads.DownloadHandler, init),
        (SESSION, handlers.SessionHandler, init),
        (SESSION + r"/ws", handlers.TerminalSocket, init),
        (SESSION + r"/windows", handlers.WindowsHandler, init),
        (SESSION + r"/search", search.SearchHandler, init),
        (SESSION + r"/upload", uploads.UploadHandler, init),
        (SESSION + r"/poll", handlers.PollOpenHandler, init),
        (SESSION + r"/poll/([^/]+)", handlers.PollHandler, init),
    ]
    return web.Application(
        routes,
        cookie_secret=cookie_secret,
        websocket_ping_interval=protocol.PING_INTERVAL_SECONDS,
        # Tornado caps the timeout at the interval: a peer silent for two intervals is dropped.
        websocket_ping_timeout=protocol.PING_INTERVAL_SECONDS,
        websocket_max_message_size=protocol.MAX_MESSAGE_BYTES,
        xsrf_cookies=False,  # SameSite=Strict cookie plus Origin checks on every mutating request
        compress_response=False,
        log_function=log_request,
        default_handler_class=handlers.NotFoundHandler,
        default_handler_args=init,
    )
