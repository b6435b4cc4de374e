"""End to end under a real supervisord: survival of shells, stop on SIGTERM, operator commands."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT
from tests.e2e.conftest import RunningApp, process_alive
from tests.helpers import TermClient, async_wait_until, wait_until

pytestmark = pytest.mark.slow


async def shell_pid(client: TermClient, tag: str) -> int:
    await client.type(f"echo {tag}=$$\r")
    await client.read_until(lambda c: re.search(rf"{tag}=(\d+)", c.text) is not None)
    match = re.search(rf"{tag}=(\d+)", client.text)
    assert match
    return int(match.group(1))


async def test_shell_survives_a_gateway_kill(app: RunningApp) -> None:
    client = await TermClient.connect(app.url, "main", app.stack.token)
    await client.wait_ready()
    before = await shell_pid(client, "BEFORE")
    await client.type("echo $((123*3))history\r")
    await client.wait_text("369history")
    gateway = app.program_pid("gateway")
    os.kill(gateway, signal.SIGKILL)
    await client.wait_closed()
    await async_wait_until(
        lambda: app.program_pid("gateway") not in (0, gateway) and app.healthy(),
        timeout=30,
        what="gateway restarted by supervisord",
    )
    again = await TermClient.connect(app.url, "main", app.stack.token)
    await again.wait_ready()
    assert "369history" in again.text  # history intact, replayed
    assert await shell_pid(again, "AFTER") == before  # the very same shell process
    again.close()
    # The watchdog, not supervisord's own 1-second poll, got the gateway respawned.
    watchdog_log = app.stack.state_dir / "logs" / "watchdog.log"
    wait_until(
        lambda: "gateway exited; supervisord restarted it" in watchdog_log.read_text(),
        timeout=10,
        what=f"the watchdog's restart line in {app.log()}",
    )


async def test_supervisorctl_works_inside_the_browser_terminal(app: RunningApp) -> None:
    client = await TermClient.connect(app.url, "main", app.stack.token, cols=120)
    await client.wait_ready()
    await client.type("supervisorctl status\r")
    # supervisorctl lists programs alphabetically: wait for the last one, then check them all.
    await client.read_until(lambda c: re.search(r"watchdog\s+RUNNING", c.text) is not None, timeout=20)
    for program in ("gateway", "model-proxy", "sync", "tmux"):
        assert re.search(rf"{program}\s+RUNNING", client.text), program
    client.close()


def niceness(pid: int) -> int:
    with Path(f"/proc/{pid}/stat").open() as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def test_background_work_yields_the_cores_to_the_terminal(app: RunningApp) -> None:
    wait_until(lambda: app.program_pid("sync") != 0, timeout=20, what="sync running")
    assert niceness(app.program_pid("sync")) == 10
    for program in ("gateway", "tmux", "model-proxy", "watchdog"):
        assert niceness(app.program_pid(program)) == 0, program


def test_scripts_ctl_restart_keeps_shells(app: RunningApp) -> None:
    pids_before = app.ctl("pid", "tmux")
    out = app.ctl("restart", "gateway")
    assert "gateway: started" in out
    assert app.ctl("pid", "tmux") == pids_before
    wait_until(app.healthy, timeout=20, what="gateway back")


async def test_sigterm_stops_everything_within_15_seconds(app: RunningApp) -> None:
    client = await TermClient.connect(app.url, "main", app.stack.token)
    await client.wait_ready()
    shell = await shell_pid(client, "SHELL")
    pids = {
        "scripts/run (services.reaper)": app.proc.pid,
        "gateway": app.program_pid("gateway"),
        "tmuxd": app.program_pid("tmux"),
        "watchdog": app.program_pid("watchdog"),
        "shell": shell,
    }
    assert all(pids.values()), pids
    started = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    wait_until(
        lambda: not any(process_alive(p) for p in pids.values()),
        timeout=15,
        what=f"all of {pids} gone",
    )
    elapsed = time.monotonic() - started
    assert elapsed < 15
    client.close()


def test_scripts_attach_joins_the_browser_session(app: RunningApp) -> None:
    bad = subprocess.run(
        [str(PROJECT_ROOT / "scripts/attach"), "a;b"], env=app.stack.env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "invalid session name" in bad.stderr
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(
            str(PROJECT_ROOT / "scripts/attach"), ["attach", "main"], {**app.stack.env, "TERM": "xterm"}
        )
    try:
        tmux = [app.stack.settings.tmux_bin, "-S", str(app.stack.settings.tmux_socket)]
        wait_until(
            lambda: subprocess.run(
                [*tmux, "list-clients", "-t", "=main"], capture_output=True, text=True
            ).stdout.strip(),
            what="a tmux client on main",
        )
        os.write(fd, b"echo attached$((2+3))\r")
        seen = b""

        def shows_marker() -> bool:
            nonlocal seen
            while select.select([fd], [], [], 0)[0]:
                seen += os.read(fd, 65536)
            return b"attached5" in seen

        wait_until(shows_marker, what="marker through scripts/attach")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
