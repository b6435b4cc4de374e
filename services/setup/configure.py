"""`python -m services.setup.configure [--registry PATH] AGENT`: rewrite one agent's config now.

The gateway runs this after recording a model choice (models.json), so the configurers run in their
own process and the gateway imports none of setup's step code (ARCHITECTURE.md). Exit 0: done;
1: the configurer failed (the reason on stderr, as the page shows it); 2: bad settings or registry.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from services import entry
from services.config import Settings
from services.setup import mcp
from services.setup.builtins import CONFIGURERS
from services.setup.registry import RegistryError, load, registry_path
from services.setup.steps import StepContext, StepFailed, StepLog, run_configurer

log = logging.getLogger("configure")


def main(settings: Settings, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.setup.configure", description=__doc__)
    parser.add_argument(
        "--registry", help="agents.yaml to read (default: CODING_AGENTS_REGISTRY or the app's)"
    )
    parser.add_argument("agent", help="the agent's id in agents.yaml")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    try:
        registry = load(registry_path({"CODING_AGENTS_REGISTRY": args.registry} if args.registry else env))
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return entry.EXIT_CONFIG
    agent = registry.agent(args.agent)
    if agent is None or not agent.configurer:
        print(f"no configurable agent {args.agent!r} in {registry.path}", file=sys.stderr)
        return entry.EXIT_CONFIG
    step_log = StepLog(settings.files.setup_logs / f"{agent.id}-config.log")
    # MCP servers as setup last found them: a model choice on the page probes nothing on the internet.
    reuse = mcp.reuse_last_check.set(True)
    try:
        run_configurer(CONFIGURERS[agent.configurer], StepContext(settings, env, step_log), agent)
    except StepFailed as exc:
        print(exc, file=sys.stderr)
        return entry.EXIT_FAILED
    finally:
        mcp.reuse_last_check.reset(reuse)
        step_log.close()
    log.info("%s configured", agent.id)
    return entry.EXIT_OK


if __name__ == "__main__":
    entry.run("configure", main)
