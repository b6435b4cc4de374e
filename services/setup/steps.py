"""One class per kind of setup step. Each is idempotent: `current()` says, in milliseconds, whether
the pinned version is already in place (then the step is skipped), and `run()` installs it or raises
StepFailed with a one-line reason taken from the tool's own output. Downloads: services/setup/download.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services import redact, state
from services.config import Settings
from services.setup.registry import Agent, Tool
from services.setup.status import LOG_TAIL_LINES

KILL_GRACE_SECONDS = 2.0


class StepFailed(Exception):
    """The step did not do its job; `reason` is one line for the status page."""

    def __init__(self, reason: str, exit_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code


class StepSkipped(Exception):
    """Raised by a builtin that does not apply here (e.g. no workspace); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class StepLog:
    """A step's log file plus the tail shown on the status page."""

    path: Path
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    on_line: Callable[[], None] | None = None
    # Everything of this run, for steps that dig the cause out of verbose output (npm's stack traces).
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=5000))

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # 0600 whatever the umask: a step's output may name a path or a URL that is nobody else's.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")  # closed by close()
        self._file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n")

    def line(self, text: str) -> None:
        text = redact.redact(text.rstrip())
        if not text:
            return
        self._file.write(text + "\n")
        self._file.flush()
        self.tail.append(text[:300])
        self.lines.append(text)
        if self.on_line is not None:
            self.on_line()

    def close(self) -> None:
        self._file.close()


@dataclass
class StepContext:
    settings: Settings
    env: Mapping[str, str]  # environment for the step's processes
    log: StepLog


# Steps written in Python (services/setup/builtins.py) and agents' configurers (configurers.py).
Builtin = Callable[[StepContext], None]
Configurer = Callable[[StepContext, Agent], None]


class Step(ABC):
    kind: str

    def __init__(
        self, id: str, title: str, after: tuple[str, ...], timeout: float, version: str = ""
    ) -> None:
        self.id = id
        self.title = title
        self.after = after
        self.timeout = timeout
        self.version = version
        self.agent = False

    @abstractmethod
    async def current(self, ctx: StepContext) -> str | None:
        """Why nothing needs doing (the step is skipped), or None to run it."""

    @abstractmethod
    async def run(self, ctx: StepContext) -> None:
        """Do the work; raise StepFailed (or StepSkipped) otherwise."""


async def run_process(argv: list[str], ctx: StepContext, cwd: Path | None = None) -> int:
    """Run argv in its own process group, its output line by line into the step's log.

    Cancellation (the step's timeout) kills the whole group: npm's children included.
    """
    ctx.log.line("$ " + " ".join(argv))
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(ctx.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise StepFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    try:
        async for raw in proc.stdout:
            ctx.log.line(raw.decode("utf-8", errors="replace"))
        return await proc.wait()
    except asyncio.CancelledError:
        await _kill_group(proc)
        raise


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), KILL_GRACE_SECONDS)
            return
        except TimeoutError:
            continue


def last_lines(ctx: StepContext, count: int = 2) -> str:
    """The step's last output lines, without the `$ command` lines run_process logs."""
    output = [line for line in ctx.log.tail if not line.startswith("$ ")]
    return " | ".join(output[-count:])


# --- npm agents ----------------------------------------------------------------------------------

NPM_ERROR = re.compile(r"^npm (?:error|ERR!)\s*(.*)$")


NPM_DETAIL = re.compile(r"^(?:code|syscall|errno|at)\s|^\w+:\s*'|^[{}]|^A complete log|^Log files")


def npm_reason(lines: list[str], exit_code: int) -> str:
    """npm's own words: `npm error code E404` + its message line, else the last output lines."""
    errors = [m.group(1).strip() for line in lines if (m := NPM_ERROR.match(line)) and m.group(1).strip()]
    code = next((e.removeprefix("code ").strip() for e in errors if e.startswith("code ")), "")
    message = next((e for e in errors if not NPM_DETAIL.search(e)), "")
    detail = " ".join(p for p in (code, message) if p) or " | ".join(lines[-2:])
    return f"npm install failed (exit {exit_code}): {detail}"[:400]


class NpmAgent(Step):
    kind = "npm"

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent.id, agent.title, agent.after, agent.timeout, agent.version)
        self.package = agent.package
        self.binary = agent.binary
        self.agent = True

    def installed_version(self, settings: Settings) -> str | None:
        manifest = settings.home / ".local" / "lib" / "node_modules" / self.package / "package.json"
        try:
            return str(json.loads(manifest.read_text()).get("version"))
        except (OSError, ValueError, AttributeError):
            return None

    async def current(self, ctx: StepContext) -> str | None:
        binary = ctx.settings.local_bin / self.binary
        if self.installed_version(ctx.settings) == self.version and os.access(binary, os.X_OK):
            return f"{self.package}@{self.version} already installed"
        return None

    async def run(self, ctx: StepContext) -> None:
        prefix = ctx.settings.home / ".local"
        argv = [
            "npm",
            "install",
            "--global",
            "--prefix",
            str(prefix),
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--loglevel=error",
            # Offline or a dead registry should fail this step in seconds, not after npm's minute of retries.
            "--fetch-retries=1",
            "--fetch-retry-mintimeout=2000",
            "--fetch-retry-maxtimeout=10000",
            f"{self.package}@{self.version}",
        ]
        code = await run_process(argv, ctx)
        if code != 0:
            raise StepFailed(npm_reason(list(ctx.log.lines), code), code)
        if not os.access(ctx.settings.local_bin / self.binary, os.X_OK):
            raise StepFailed(
                f"npm installed {self.package} but {ctx.settings.local_bin / self.binary} is missing"
            )
        got = self.installed_version(ctx.settings)
        if got != self.version:
            raise StepFailed(f"npm installed {self.package}@{got}, not the pinned {self.version}")


# --- commands and builtins -----------------------------------------------------------------------


class Command(Step):
    kind = "command"

    def __init__(self, tool: Tool) -> None:
        super().__init__(tool.id, tool.title, tool.after, tool.timeout, tool.version)
        self.argv = list(tool.run)
        self.check = list(tool.check)

    async def current(self, ctx: StepContext) -> str | None:
        if self.check and await run_process(self.check, ctx) == 0:
            return "check passed: " + " ".join(self.check)
        return None

    async def run(self, ctx: StepContext) -> None:
        code = await run_process(self.argv, ctx)
        if code != 0:
            raise StepFailed(f"exited with status {code}: {last_lines(ctx) or 'no output'}", code)


class BuiltinStep(Step):
    kind = "builtin"

    def __init__(self, tool: Tool, function: Builtin) -> None:
        super().__init__(tool.id, tool.title, tool.after, tool.timeout, tool.version)
        self.function = function

    async def current(self, ctx: StepContext) -> str | None:
        return None  # builtins are cheap and converge on their own

    async def run(self, ctx: StepContext) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.function, ctx)


class Configure(Step):
    """Writes an agent's settings after its install: its own step, so a bad config file is visible."""

    kind = "configure"

    def __init__(self, agent: Agent, configurer: Configurer) -> None:
        super().__init__(f"{agent.id}-config", f"{agent.title} settings", (agent.id,), 60)
        self.agent_entry = agent
        self.configurer = configurer

    async def current(self, ctx: StepContext) -> str | None:
        return None  # cheap and converging: always rewrite what we manage

    async def run(self, ctx: StepContext) -> None:
        await asyncio.get_running_loop().run_in_executor(
            None, run_configurer, self.configurer, ctx, self.agent_entry
        )


def run_configurer(configurer: Configurer, ctx: StepContext, agent: Agent) -> None:
    """One configurer of an agent at a time, across processes: setup's step and a switch on the page
    (python -m services.setup.configure) read, change and write the same files."""
    lock = ctx.settings.files.configure_lock(agent.id)
    with state.exclusive(lock, lambda: ctx.log.line("waiting for another rewrite of these settings")):
        configurer(ctx, agent)
