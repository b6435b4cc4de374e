"""The whole system started the way users start it: scripts/run, supervisord in the foreground."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT
from tests.conftest import Stack
from tests.helpers import free_port, gzipped_system_tmux, path_without_tmux, wait_until

TMUX_ASSET = "/tmux.gz"


@dataclass
class RunningApp:
    stack: Stack
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.stack.port}"

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "ctl"), *args],
            env=self.stack.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return result.stdout + result.stderr

    def program_pid(self, name: str) -> int:
        out = self.ctl("pid", name).strip()
        return int(out) if out.isdigit() and out != "0" else 0

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        logs = self.stack.state_dir / "logs"
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log")))


def without_tmux(stack: Stack) -> int:
    """Make the stack a Databricks App whose tmux download fails: no tmux on PATH, and
    CODING_AGENTS_TMUX_URL on a port where nothing listens. Returns that port (for a FileServer
    serving TMUX_ASSET later: the same URL then works)."""
    port = free_port()
    _, checksum = gzipped_system_tmux()
    venv_bin = stack.env["PATH"].split(":")[0]
    stack.env.update(
        PATH=f"{venv_bin}:{path_without_tmux(stack.root / 'bin')}",
        CODING_AGENTS_TMUX_URL=f"http://127.0.0.1:{port}{TMUX_ASSET}",
        CODING_AGENTS_TMUX_SHA256=checksum,
    )
    return port


def start_app(stack: Stack, tmux: bool = True) -> RunningApp:
    """scripts/run, until the gateway answers and (with `tmux`) the tmux program runs."""
    with (stack.root / "run.out").open("ab") as out:  # append: supervisord opens /dev/stdout itself too
        proc = subprocess.Popen(
            [str(PROJECT_ROOT / "scripts" / "run")],
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    app = RunningApp(stack, proc)
    try:
        wait_until(app.healthy, timeout=60, what="gateway /health")
        if tmux:
            wait_until(lambda: "RUNNING" in app.ctl("status", "tmux"), timeout=30, what="tmux RUNNING")
    except AssertionError:
        stop_app(app)
        raise AssertionError((stack.root / "run.out").read_text() + app.log()) from None
    return app


def stop_app(app: RunningApp) -> None:
    if app.proc.poll() is None:
        app.proc.send_signal(signal.SIGTERM)
        try:
            app.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(app.proc.pid, signal.SIGKILL)
            app.proc.wait()
    # Whatever outlived supervisord (a test may have killed it hard) must not leak into other tests.
    settings = app.stack.settings
    subprocess.run(
        [settings.tmux_bin, "-S", str(settings.tmux_socket), "kill-server"], capture_output=True, check=False
    )
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(app.proc.pid, signal.SIGKILL)


@pytest.fixture
def app(stack: Stack) -> Iterator[RunningApp]:
    running = start_app(stack)
    yield running
    stop_app(running)


def process_alive(pid: int) -> bool:
    try:
        with Path(f"/proc/{pid}/stat").open() as f:
            return re.split(r"\) ", f.read(), maxsplit=1)[1][0] != "Z"
    except (OSError, IndexError):  # gone between the open and the read: ProcessLookupError
        return False
