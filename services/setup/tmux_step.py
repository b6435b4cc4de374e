"""The setup step "tmux": install tmux where it is missing, then have supervisord start the tmux program.

Without tmux the app runs degraded (shells on the gateway's own PTYs, lost when it restarts). This
step, run at every start and by the page's Retry, brings tmux in without a redeploy: new sessions
live in tmux as soon as its server answers. A working tmux whose server answers is skipped in ms.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from services import tmux_install
from services.setup.steps import StepContext, StepFailed, StepSkipped
from services.supervisor_client import AlreadyRunning, SupervisorUnavailable, start_program
from services.tmux import server_answers
from services.tmux_install import InstallError

SERVER_WAIT_SECONDS = 10.0


def working_tmux(binary: str) -> tuple[Path, str] | None:
    """The binary's path and `tmux -V`, or None when it is missing or does not run as tmux."""
    found = shutil.which(binary)
    if found is None:
        return None
    try:
        return Path(found), tmux_install.tmux_version(Path(found), found)
    except InstallError:
        return None


def install_tmux(ctx: StepContext) -> None:
    settings = ctx.settings
    working = working_tmux(settings.tmux_bin)
    if working is not None:
        path, version = working
        if server_answers(settings.tmux_socket):
            raise StepSkipped(f"{version} at {path}, its server is running")
        ctx.log.line(f"{version} at {path}; its server is not running")
    else:
        target = settings.local_bin / "tmux"
        if Path(settings.tmux_bin) != target:
            raise StepFailed(
                f"CODING_AGENTS_TMUX is {settings.tmux_bin}, which does not run as tmux: "
                f"fix it, or unset it so that setup installs tmux into {target}"
            )
        try:
            message = tmux_install.run(target, ctx.env, say=ctx.log.line)
        except (InstallError, OSError) as exc:
            reason = str(exc) if isinstance(exc, InstallError) else f"cannot install tmux: {exc}"
            tmux_install.record(settings, False, reason)  # the page's banner shows the new reason
            raise StepFailed(reason) from None
        tmux_install.record(settings, True, message)
        ctx.log.line(message)
    start_tmux_program(ctx)


def start_tmux_program(ctx: StepContext) -> None:
    """Have supervisord run `tmux` (it exited for want of a binary) until its server answers.

    At a start, this step runs while tmuxd may still be on its way out (it stays up 1.2 s before
    exiting 78 so supervisord calls that expected): a program that is "already running" then is the
    dying one, so starting is retried until the server answers, not tried once.
    """
    settings = ctx.settings
    socket = settings.files.supervisor_socket
    deadline = time.monotonic() + SERVER_WAIT_SECONDS
    said = ""
    while not server_answers(settings.tmux_socket):
        if time.monotonic() > deadline:
            raise StepFailed(
                f"the tmux server did not answer within {SERVER_WAIT_SECONDS:g} s (scripts/ctl tail tmux)"
            )
        try:
            start_program(socket, "tmux")
            message = "supervisord is starting the tmux program"
        except AlreadyRunning:
            message = "the tmux program is running; waiting for its server"
        except SupervisorUnavailable as exc:
            raise StepFailed(f"tmux is installed, but the tmux program could not be started: {exc}") from None
        if message != said:
            ctx.log.line(message)
            said = message
        time.sleep(0.1)
    ctx.log.line("the tmux server answers: new sessions live in tmux")
