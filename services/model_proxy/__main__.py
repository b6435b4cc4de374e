"""`python -m services.model_proxy`: agents → Databricks models, on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import logging
import signal

from tornado.httpserver import HTTPServer

from services import entry, state
from services.config import Settings
from services.model_proxy.app import ProxyContext, make_app
from services.model_proxy.credentials import Credentials
from services.model_proxy.key import proxy_key
from services.model_proxy.upstream import Upstreams

log = logging.getLogger("model_proxy")

WARM_AFTER_SECONDS = 2.0


async def serve(settings: Settings) -> None:
    credentials = Credentials(settings)
    upstreams = Upstreams(settings, settings.proxy_probe_seconds, credentials.headers)
    ctx = ProxyContext(settings, proxy_key(settings), upstreams, credentials)
    server = HTTPServer(make_app(ctx), xheaders=False, max_body_size=64 * 1024 * 1024)
    server.listen(settings.model_proxy_port, "127.0.0.1")
    log.info(
        "listening on %s; serving endpoints at %s%s; credential: %s",
        settings.model_proxy_url,
        settings.databricks_host or "(no DATABRICKS_HOST)",
        f", AI Gateway at {ctx.upstreams.gateway}" if ctx.upstreams.gateway else "",
        ctx.credentials.mode,
    )
    ctx.save_status(force=True)
    watcher = asyncio.create_task(ctx.upstreams.watch_gateway())
    warm = asyncio.create_task(warm_credentials(ctx.credentials))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    watcher.cancel()
    warm.cancel()
    server.stop()
    await ctx.client.aclose()
    ctx.save_status(force=True)


async def warm_credentials(credentials: Credentials) -> None:
    """The service principal's first token (and the SDK import behind it) is fetched now, once the
    terminal is up, rather than inside an agent's first request."""
    if credentials.mode != "oauth-m2m":
        return
    await asyncio.sleep(WARM_AFTER_SECONDS)
    try:
        await credentials.headers()
    except Exception as exc:  # the request path reports it again, with the reason, to the agent
        log.warning("no service-principal token yet: %s", exc)


def main(settings: Settings) -> int:
    state.ensure_dir(settings.state_dir)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    entry.run("model-proxy", main)
