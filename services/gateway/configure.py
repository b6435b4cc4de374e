"""Have setup rewrite an agent's config after a model choice or a tracing switch: in a child process
(`python -m services.setup.configure`), so the gateway never imports setup's step code."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from services.agent_models import tracing_wanted
from services.config import PROJECT_ROOT, Settings
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


def agents_waiting_for_tracing(settings: Settings, registry: Registry) -> list[Agent]:
    """Agents whose tracing is wanted but not on (reads their state files: run it off the loop)."""
    files = settings.files
    wanted = [agent for agent in registry.agents if tracing_wanted(settings, agent)]
    return [agent for agent in wanted if not read_tracing_status(files.tracing_status(agent.id)).on]


async def retry_waiting_tracing(ctx: GatewayContext) -> None:
    """The owner's token just became usable: agents whose MLflow tracing is wanted but stayed off
    (setup ran before the token was restored or pasted) are configured again, without a restart."""
    registry = ctx.registry
    if registry is None:
        return
    for agent in await ctx.run_blocking(agents_waiting_for_tracing, ctx.settings, registry):
        failure = await ctx.run_blocking(configure_agent, registry, agent, ctx.attach_env)
        status = await ctx.run_blocking(read_tracing_status, ctx.settings.files.tracing_status(agent.id))
        if failure or not status.on:
            log.warning("%s: MLflow tracing still off: %s", agent.title, failure or status.reason)
        else:
            log.info("%s: MLflow tracing on now that the owner's token is here", agent.title)
