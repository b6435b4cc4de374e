"""Have setup rewrite an agent's config after a model choice: in a child process
(`python -m services.setup.configure`), so the gateway never imports setup's step code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from services.config import PROJECT_ROOT
from services.setup.registry import Agent, Registry

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
