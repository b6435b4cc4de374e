"""Have setup rewrite an agent's config after a model choice or a tracing switch: in a child process
(`python -m services.setup.configure`), so the gateway never imports setup's step code."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from services.agent_models import tracing_wanted
from services.config import PROJECT_ROOT
from services.setup.registry import Agent, Registry
from services.statefiles import read_tracing_status

if TYPE_CHECKING:
    from services.gateway.context import GatewayContext

log = logging.getLogger(__name__)

CONFIGURE_TIMEOUT_SECONDS = 60.0  # a configurer only reads and writes a few small files


def configure_agent(registry: Registry, agent: Agent, env: Mapping[str, str]) -> str:
    """Run the agent's configurer with `env` (the shells' environment: the same HOME and state dir as
    this process); "" when done, else why not, as the configurer said it."""
    argv = [sys.executable, "-m", "services.setup.configure", "--registry", str(registry.path), agent.id]
    try:
        done = subprocess.run(
            argv,
            cwd=PROJECT_ROOT,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=CONFIGURE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the configurer did not finish within {CONFIGURE_TIMEOUT_SECONDS:.0f} s"
    except OSError as exc:
        return f"cannot run the configurer: {exc.strerror or exc}"
    if done.returncode == 0:
        return ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"the configurer exited with status {done.returncode}"


async def retry_waiting_tracing(ctx: GatewayContext) -> None:
    """The owner's token just became usable: agents whose MLflow tracing is wanted but stayed off
    (setup ran before the token was restored or pasted) are configured again, without a restart."""
    registry = ctx.registry
    if registry is None:
        return
    for agent in registry.agents:
        if not tracing_wanted(ctx.settings, agent):
            continue
        if read_tracing_status(ctx.settings.files.tracing_status(agent.id)).on:
            continue
        failure = await ctx.run_blocking(configure_agent, registry, agent, ctx.attach_env)
        status = read_tracing_status(ctx.settings.files.tracing_status(agent.id))
        if failure or not status.on:
            log.warning("%s: MLflow tracing still off: %s", agent.title, failure or status.reason)
        else:
            log.info("%s: MLflow tracing on now that the owner's token is here", agent.title)
