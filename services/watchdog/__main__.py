"""`python -m services.watchdog`: gets a crashed program restarted at once instead of in 1-2 s.

supervisord reaps and respawns only when its poll loop turns, and that loop sleeps up to a second
at a time (signals do not cut it short). Reaping happens in one turn and respawning in the next,
so a killed gateway came back after 1 s, or 2 s when the first turn came too early. The watchdog
waits on a pidfd for each program, and when one exits it asks supervisord about that program
every few milliseconds (each request turns the loop) until it runs again under a new pid, or
supervisord has decided not to restart it (a one-shot that finished, a program backing off).
It keeps no state: SIGTERM's default action (exit at once) is its shutdown.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from services import entry
from services.config import Settings
from services.supervisor_client import ProgramInfo, SupervisorUnavailable, programs

log = logging.getLogger("watchdog")

RELIST_SECONDS = 2.0  # programs started since the last look (a retried setup, an operator's start)
KNOCK_SECONDS = 0.005
KNOCK_FOR_SECONDS = 2.0  # the most one exit may take; normally a handful of knocks
# States a program rests in once supervisord has decided not to start it again right now.
RESTING = {"EXITED", "STOPPED", "FATAL", "BACKOFF"}


class NoPidfd(Exception):
    """The kernel predates pidfds (Linux 5.3)."""


@dataclass(frozen=True)
class Watched:
    name: str
    pid: int


def open_pidfds(running: dict[str, ProgramInfo]) -> dict[int, Watched]:
    """pidfd → program, for every running program but this one."""
    fds: dict[int, Watched] = {}
    for name, info in running.items():
        pid = info.pid
        if pid in (0, os.getpid()):
            continue
        try:
            fds[os.pidfd_open(pid)] = Watched(name, pid)
        except ProcessLookupError:
            continue  # exited since supervisord answered; the next look sees its successor
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            if exc.errno == errno.ENOSYS:
                raise NoPidfd() from None
            raise
    return fds


def knock_until_settled(socket_path: Path, program: Watched) -> tuple[str, float]:
    """Turn supervisord's loop until the program runs under a new pid or stays down through a whole
    turn after being reaped; what happened, and the seconds that took."""
    start = time.monotonic()
    resting_seen = 0
    while time.monotonic() - start < KNOCK_FOR_SECONDS:
        info = programs(socket_path).get(program.name, ProgramInfo(0, "REMOVED"))
        if info.pid not in (0, program.pid):
            return "supervisord restarted it", time.monotonic() - start
        # The answer that first shows it reaped may come before the turn that would respawn it.
        resting_seen = resting_seen + 1 if info.state in RESTING or info.state == "REMOVED" else 0
        if resting_seen >= 2:
            return f"supervisord left it {info.state}", time.monotonic() - start
        time.sleep(KNOCK_SECONDS)
    return "supervisord has not reaped it yet", time.monotonic() - start


def watch_once(socket_path: Path, timeout: float = RELIST_SECONDS) -> list[str]:
    """Wait up to `timeout` for a program to exit and get it restarted; the programs that exited."""
    fds = open_pidfds(programs(socket_path))
    try:
        ready, _, _ = select.select(list(fds), [], [], timeout)
        for fd in ready:
            outcome, took = knock_until_settled(socket_path, fds[fd])
            log.info("%s exited; %s (%.0f ms)", fds[fd].name, outcome, took * 1000)
        return [fds[fd].name for fd in ready]
    finally:
        for fd in fds:
            os.close(fd)


def main(settings: Settings) -> int:
    socket_path = settings.files.supervisor_socket
    while True:
        try:
            watch_once(socket_path)
        except SupervisorUnavailable as exc:
            log.warning("%s", exc)
            time.sleep(RELIST_SECONDS)
        except NoPidfd:
            # Exiting would only make supervisord restart us over and over.
            log.warning("this kernel has no pidfds: restarts wait for supervisord's own 1-second poll")
            signal.pause()


if __name__ == "__main__":
    entry.run("watchdog", main)
