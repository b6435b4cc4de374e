"""services.tmuxd: a server left over from a crashed supervisord is adopted, not replaced."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.conftest import Stack
from tests.helpers import start_tmuxd, wait_until


def catches_sigterm(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), 16)
    return bool(mask >> (signal.SIGTERM - 1) & 1)


def test_adopts_a_running_server_and_forwards_sigterm(stack: Stack) -> None:
    settings = stack.settings
    settings.state_dir.mkdir(parents=True)
    tmux = [settings.tmux_bin, "-S", str(settings.tmux_socket)]
    orphan = subprocess.Popen([*tmux[:1], "-D", *tmux[1:], "-f", "/dev/null"], env=stack.env)
    try:
        wait_until(lambda: subprocess.run([*tmux, "list-sessions"], capture_output=True).returncode == 0)
        subprocess.run([*tmux, "new-session", "-d", "-s", "kept"], check=True, env=stack.env)
        tmuxd = start_tmuxd(stack.env)
        # It keeps running (adopting) rather than failing to start a second server; adopting means
        # it now catches SIGTERM to forward it.
        wait_until(lambda: catches_sigterm(tmuxd.pid), what="tmuxd adopting")
        assert tmuxd.poll() is None
        assert subprocess.run([*tmux, "has-session", "-t", "=kept"]).returncode == 0
        tmuxd.send_signal(signal.SIGTERM)
        assert tmuxd.wait(timeout=10) == 0
        assert orphan.wait(timeout=10) == 0  # the adopted server was told to stop too
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
