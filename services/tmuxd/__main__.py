"""`python -m services.tmuxd`: prepare the shells' environment, then become the tmux server.

Runs `tmux -D` in the foreground so supervisord owns it. If a tmux server from an earlier run still
serves the socket (supervisord was killed, the server outlived it), adopt it instead of failing:
wait for it to exit and forward SIGTERM, so its shells survive a supervisord crash.

Without a working tmux binary it exits with NO_TMUX, which supervisord.conf lists as expected: the
gateway serves shells itself (degraded mode) and the setup step "tmux" starts this program again
once it has installed tmux.
"""

from __future__ import annotations

import logging
import os
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from services import entry, github, state
from services.config import PROJECT_ROOT, Settings
from services.shell_env import shell_environment, shell_secrets
from services.sync import notice
from services.tmux_install import InstallError, tmux_version

log = logging.getLogger("tmuxd")

TEMPLATE = Path(__file__).with_name("tmux.conf")
NO_TMUX = 78  # EX_CONFIG; supervisord.conf: exitcodes=78, autorestart=unexpected
# supervisord counts an exit before `startsecs` (1 s for this program) as a failed start, retried into
# FATAL whatever the code; after it, an expected code is a clean EXITED.
MIN_LIFETIME_SECONDS = 1.2


def render_config(settings: Settings) -> Path:
    terminal = "tmux-256color" if _has_terminfo("tmux-256color") else "screen-256color"
    target = settings.files.tmux_conf
    text = TEMPLATE.read_text().replace("@DEFAULT_TERMINAL@", terminal)
    text = text.replace("@SHELL_SECRETS@", write_shell_secrets(settings))
    state.atomic_write_bytes(target, text.encode())
    return target


def write_shell_secrets(settings: Settings) -> str:
    """shell_secrets as tmux global environment, in a 0600 file of their own; the line that sources it.

    tmux gives every new pane its global environment, so shells get these while the server's own
    /proc/<pid>/environ holds none of them."""
    path = settings.files.tmux_shell_conf
    values = shell_secrets(settings)
    quotable = {k: v for k, v in values.items() if _tmux_quotable(v)}
    for name in values.keys() - quotable.keys():
        log.warning("%s holds a quote or a newline: shells do not get it", name)
    if not quotable or not _tmux_quotable(str(path)):
        path.unlink(missing_ok=True)
        return "# (none)"
    lines = "".join(f"set-environment -g {name} '{value}'\n" for name, value in quotable.items())
    state.ensure_dir(path.parent)
    state.atomic_write_bytes(path, lines.encode())
    return f"source-file -q '{path}'"


def _tmux_quotable(value: str) -> bool:
    # Inside single quotes tmux takes everything literally, but a quote or newline cannot be escaped.
    return "'" not in value and "\n" not in value


def _has_terminfo(name: str) -> bool:
    dirs = ["/etc/terminfo", "/lib/terminfo", "/usr/share/terminfo", "/usr/lib/terminfo"]
    return any(Path(d, name[0], name).exists() for d in dirs)


def write_supervisorctl_wrapper(settings: Settings) -> None:
    """`supervisorctl` inside the browser terminal talks to this app's supervisord."""
    script = (
        "#!/bin/sh\n"
        f"CODING_AGENTS_STATE_DIR='{settings.state_dir}' exec '{sys.executable}' "
        f"-m supervisor.supervisorctl -c '{PROJECT_ROOT / 'supervisord.conf'}' \"$@\"\n"
    )
    state.atomic_write_bytes(settings.state_bin / "supervisorctl", script.encode(), mode=0o755)


def write_python_command(settings: Settings, name: str, module: str, with_state_dir: bool = True) -> None:
    """`$STATE/bin/NAME`: runs `python -m MODULE` with the app's interpreter from any folder.

    PYTHONPATH + -P: the app's package is found, and never a `services/` in the user's cwd.
    """
    state_dir = f"CODING_AGENTS_STATE_DIR={shlex.quote(str(settings.state_dir))} " if with_state_dir else ""
    script = (
        "#!/bin/sh\n"
        f"{state_dir}PYTHONPATH={shlex.quote(str(PROJECT_ROOT))} "
        f'exec {shlex.quote(sys.executable)} -P -m {module} "$@"\n'
    )
    state.atomic_write_bytes(settings.state_bin / name, script.encode(), mode=0o755)


def write_refresh_skills_wrapper(settings: Settings) -> None:
    """`refresh-skills` inside the browser terminal reinstalls the agents' skills."""
    write_python_command(settings, "refresh-skills", "services.setup.refresh_skills")


def write_download_command(settings: Settings) -> None:
    """`download FILE` inside the browser terminal makes the page download FILE (services.download)."""
    write_python_command(settings, "download", "services.download")


def write_dbx_run_command(settings: Settings) -> None:
    """`dbx-run FILE` inside the browser terminal runs FILE as a serverless job (services.dbx_run)."""
    # The shell's own environment passes through: the run uses the terminal's Databricks credentials.
    write_python_command(settings, "dbx-run", "services.dbx_run", with_state_dir=False)


def running_server_pid(settings: Settings) -> int | None:
    """PID of a live tmux server on our socket, or None (no socket, or a stale one)."""
    if not settings.tmux_socket.exists():
        return None
    result = subprocess.run(
        [settings.tmux_bin, "-S", str(settings.tmux_socket), "display-message", "-p", "#{pid}"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    try:
        return int(result.stdout.strip()) if result.returncode == 0 else None
    except ValueError:
        return None


def adopt(pid: int) -> int:
    """Stay in the foreground while an existing tmux server lives; forward SIGTERM/SIGINT to it."""
    log.info("adopting the running tmux server (pid %d); its shells are kept", pid)

    def forward(signum: int, _frame: object) -> None:
        os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return 0
    while True:
        try:
            select.select([fd], [], [])
            return 0
        except InterruptedError:
            continue


def no_tmux(reason: str, started: float) -> int:
    """Exit as supervisord expects when there is no tmux to run (see NO_TMUX)."""
    # Not announced: the gateway puts the one degraded-mode line on the platform log.
    log.error(
        "%s; the gateway serves shells without tmux (degraded mode) until the setup step "
        '"tmux" installs it and starts this program again',
        reason,
    )
    time.sleep(max(0.0, MIN_LIFETIME_SECONDS - (time.monotonic() - started)))
    return NO_TMUX


def main(settings: Settings) -> int:  # noqa: RET503 (ends in execve: it never returns)
    started = time.monotonic()
    for folder in (settings.state_dir, settings.state_bin, settings.log_dir):
        state.ensure_dir(folder)
    settings.projects_dir.mkdir(parents=True, exist_ok=True)
    settings.local_bin.mkdir(parents=True, exist_ok=True)
    # The shells' own commands, wanted without tmux (degraded mode) too.
    write_supervisorctl_wrapper(settings)
    write_refresh_skills_wrapper(settings)
    write_download_command(settings)
    write_dbx_run_command(settings)
    github.write_commands(settings)
    if not Path(settings.tmux_bin).exists():
        return no_tmux(f"tmux not found at {settings.tmux_bin}", started)
    try:
        tmux_version(Path(settings.tmux_bin), settings.tmux_bin)
    except InstallError as exc:
        return no_tmux(str(exc), started)
    notice.prepare(settings)  # before the server starts, so even the first shell says a restore runs
    config = render_config(settings)
    pid = running_server_pid(settings)
    if pid is not None:
        return adopt(pid)
    settings.tmux_socket.unlink(missing_ok=True)  # stale socket of a dead server
    env = shell_environment(settings, os.environ)
    os.chdir(settings.projects_dir)
    argv = [settings.tmux_bin, "-D", "-u", "-S", str(settings.tmux_socket), "-f", str(config)]
    log.info("starting %s", " ".join(argv))
    os.execve(settings.tmux_bin, argv, env)


if __name__ == "__main__":
    entry.run("tmuxd", main)
