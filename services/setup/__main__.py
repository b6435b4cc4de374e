"""`python -m services.setup`: install and configure everything agents.yaml names.

Run by supervisord once per start (program `setup`), and by hand: `--retry-failed` reruns what
failed last time, `--only ID` one step. Every step is idempotent, so a full rerun skips what is in
place in milliseconds. Exit status: 0 all good, 1 a step failed, 2 bad registry or settings,
3 another run holds the lock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from services import entry, state
from services.config import Settings
from services.platform_log import announce
from services.setup import builtins
from services.setup.download import Download
from services.setup.registry import Registry, RegistryError, load, registry_path
from services.setup.runner import DEFAULT_CONCURRENCY, Runner
from services.setup.status import (
    SetupState,
    SetupStatus,
    StepState,
    read_status,
    request_path,
    status_path,
    write_status,
)
from services.setup.steps import BuiltinStep, Command, Configure, NpmAgent, Step
from services.shell_env import shell_path
from services.tmux import TmuxError, TmuxSessions

log = logging.getLogger("setup")


def build_steps(registry: Registry) -> list[Step]:
    steps: list[Step] = []
    for agent in registry.agents:
        steps.append(NpmAgent(agent))
        if agent.configurer:
            steps.append(Configure(agent, builtins.CONFIGURERS[agent.configurer]))
    for tool in registry.tools:
        if tool.kind == "download":
            steps.append(Download(tool))
        elif tool.kind == "command":
            steps.append(Command(tool))
        else:
            steps.append(BuiltinStep(tool, builtins.BUILTINS[tool.run[0]]))
    return steps


def step_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = shell_path(settings, os.environ)
    env["HOME"] = str(settings.home)
    env.pop("DATABRICKS_CLIENT_ID", None)
    env.pop("DATABRICKS_CLIENT_SECRET", None)
    return env


def tell_tmux(settings: Settings) -> None:
    """New panes get the PATH with ~/.local/bin (shells started earlier already search it)."""
    sessions = TmuxSessions.for_socket(settings.tmux_socket, settings.tmux_bin)
    # No tmux server (a test, or a run by hand without the app): nothing to tell.
    with contextlib.suppress(TmuxError):
        sessions.set_environment("PATH", shell_path(settings, os.environ))


def take_request(settings: Settings) -> tuple[bool, set[str] | None]:
    """The page's Retry, if it left one: (retry failed steps?, only these steps)."""
    path = request_path(settings)
    try:
        request = state.read_json(path)
    except (OSError, ValueError):
        return False, None
    path.unlink(missing_ok=True)
    if not isinstance(request, dict):
        return False, None
    only = request.get("only")
    if isinstance(only, list) and only and all(isinstance(i, str) for i in only):
        return False, set(only)
    return bool(request.get("retry_failed")), None


async def run_until_stopped(runner: Runner, only: set[str] | None) -> SetupStatus:
    """SIGTERM/SIGINT cancel the run, which kills every step's process group on the way out."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await runner.run(only)


def acquire_lock(settings: Settings) -> int | None:
    try:
        return state.pid_lock(settings.files.setup_lock)
    except state.Locked as exc:
        log.error("setup is already running (pid %s); wait for it or stop it first", exc.holder)
        return None


class NothingToRun(Exception):
    """The steps asked for cannot or need not run: exit with `code` (the log says why)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def chosen_steps(
    args: argparse.Namespace, steps: list[Step], settings: Settings, path: Path
) -> set[str] | None:
    """The step ids to run (None: all): --only, a Retry asked for on the page, or --retry-failed."""
    only: set[str] | None = None
    if args.only:
        unknown = sorted(set(args.only) - {s.id for s in steps})
        if unknown:
            log.error("no such step: %s (see --list)", ", ".join(unknown))
            raise NothingToRun(2)
        only = set(args.only)
    if not args.only and not args.retry_failed:
        args.retry_failed, requested = take_request(settings)
        only = requested or only
    if args.retry_failed:
        try:
            previous = read_status(path)
        except (OSError, ValueError) as exc:
            log.error("cannot read the last status (%s); run without --retry-failed", exc)
            raise NothingToRun(2) from None
        only = {s.id for s in previous.steps if s.state in (StepState.FAILED, StepState.PENDING)}
        if not only:
            log.info("nothing failed last time; nothing to retry")
            raise NothingToRun(0)
    return only


def main(settings: Settings, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.setup", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", metavar="ID", help="run only this step (repeatable)")
    parser.add_argument("--retry-failed", action="store_true", help="rerun the steps that failed last time")
    parser.add_argument("--list", action="store_true", help="print the steps and exit")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if not settings.setup_enabled:
        log.info("setup is off (CODING_AGENTS_SETUP=off); nothing to do")
        return 0
    try:
        registry = load(registry_path(env))
    except RegistryError as exc:
        announce(f"setup cannot start: {exc}", "fix agents.yaml (the page shows the same reason)")
        # The page shows this instead of steps: the registry is the first thing to fix.
        write_status(
            status_path(settings), SetupStatus(SetupState.FAILED, time.time(), time.time(), reason=str(exc))
        )
        return 2
    steps = build_steps(registry)
    if args.list:
        for step in steps:
            after = f" (after {', '.join(step.after)})" if step.after else ""
            print(f"{step.id:20} {step.kind:9} {step.version:10} {step.title}{after}")
        return 0
    path = status_path(settings)
    try:
        only = chosen_steps(args, steps, settings, path)
    except NothingToRun as done:
        return done.code
    lock = acquire_lock(settings)
    if lock is None:
        return 3
    try:
        runner = Runner(
            steps, settings, path, settings.files.setup_logs, step_environment(settings), args.concurrency
        )
        status = asyncio.run(run_until_stopped(runner, only))
    except asyncio.CancelledError:
        return 1
    finally:
        os.close(lock)
    tell_tmux(settings)
    return 1 if any(s.state == StepState.FAILED for s in status.steps) else 0


if __name__ == "__main__":
    entry.run("setup", main)
