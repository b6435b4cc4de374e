"""services.tmuxd: a server left over from a crashed supervisord is adopted, not replaced."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from services.config import Settings
from services.sync import notice
from services.sync.notice import notice_path
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


def capture(tmux: list[str], target: str) -> str:
    return subprocess.run([*tmux, "capture-pane", "-p", "-t", target], capture_output=True, text=True).stdout


def test_a_fresh_containers_shells_say_a_restore_is_running(stack: Stack) -> None:
    """With a workspace and no sync journal yet (an Apps restart), services.tmuxd leaves the restore
    notice before the server starts: the very first shell prints it, and shells stop once it is gone."""
    env = {**stack.env, "DATABRICKS_HOST": "https://example.invalid", "DATABRICKS_TOKEN": "dapi-x"}
    settings = stack.settings
    tmux = [settings.tmux_bin, "-S", str(settings.tmux_socket)]
    tmuxd = start_tmuxd(env)
    try:
        wait_until(lambda: subprocess.run([*tmux, "list-sessions"], capture_output=True).returncode != 1)
        assert notice_path(settings).exists()
        subprocess.run(
            [*tmux, "new-session", "-d", "-s", "first", "-x", "200", "-y", "20"], check=True, env=env
        )
        wait_until(lambda: "checking the workspace for projects to restore" in capture(tmux, "=first:"))
        notice.write_notice(settings, notice.restoring_text(3, "/Users/x@example.com/projects"))
        subprocess.run([*tmux, "new-window", "-t", "=first:"], check=True)
        line = (
            "restoring 3 projects from /Workspace/Users/x@example.com/projects… ~/projects fills in a moment"
        )
        wait_until(lambda: line in capture(tmux, "=first:1"), what="the notice in a new shell")
        notice.clear_notice(settings)
        subprocess.run([*tmux, "new-window", "-t", "=first:"], check=True)
        wait_until(lambda: capture(tmux, "=first:2").strip().endswith(("$", "#")), what="a prompt")
        assert "[coding-agents]" not in capture(tmux, "=first:2")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        tmuxd.wait(timeout=10)


def test_no_notice_without_a_workspace_or_once_the_sync_has_run(stack: Stack) -> None:
    settings = stack.settings
    notice.prepare(settings)  # no DATABRICKS_HOST: nothing to restore from
    assert not notice_path(settings).exists()
    with_workspace = Settings.from_env(
        {**stack.env, "DATABRICKS_HOST": "https://x.invalid", "DATABRICKS_TOKEN": "t"}
    )
    (settings.state_dir / "sync").mkdir(parents=True)
    (settings.state_dir / "sync" / "journal.sqlite").touch()  # the sync watcher ran on this disk
    notice.prepare(with_workspace)
    assert not notice_path(settings).exists()
