"""`python -m services.reaper [--relay FIFO] -- COMMAND...`: run supervisord so that nothing outlives it.

scripts/run execs this, so it keeps the pid the platform signals. It becomes a child subreaper
(Linux prctl): every process orphaned below it — `nohup cmd &` from a shell, `setsid -f`, a
double-forked daemon such as Codex's background server — is reparented to it instead of to init.
It forwards SIGTERM/SIGINT/SIGHUP to COMMAND (supervisord), and once that has exited it sends
SIGTERM to every descendant left, then SIGKILL, all within Databricks Apps' 15 s stop budget.

With --relay it also copies what programs write into FIFO (their stderr, see
services/platform_log.py) to its own stdout, the platform log, until the very end.

With --knock SOCKET (supervisord's control socket) it wakes supervisord's poll loop by connecting to
it: a signal does not wake that loop (PEP 475 retries the poll), a connection does. Once when the
socket appears at start (supervisord spawns its programs only after its first one-second poll: a
second off every start), and every 50 ms while supervisord stops (it stops its programs one after
another and notices each exit only when its loop wakes: up to a second each of the 15 without it,
figures in `scripts/bench stop`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import logging
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

from services import proctable

log = logging.getLogger("reaper")

PR_SET_CHILD_SUBREAPER = 36
STOPPING = (signal.SIGTERM, signal.SIGINT)
# Databricks Apps sends SIGKILL 15 s after SIGTERM: supervisord gets most of it (its stopwaitsecs
# add up to 13 s), the sweep the rest, with a margin for this process to exit.
STOP_BUDGET_SECONDS = 14.0
SWEEP_GRACE_SECONDS = 1.0
KILL_FOR_SECONDS = 1.0  # SIGKILL cannot be caught; only a process stuck in the kernel takes longer
SUPERVISORD_BUDGET_SECONDS = STOP_BUDGET_SECONDS - SWEEP_GRACE_SECONDS - KILL_FOR_SECONDS
POLL_SECONDS = 0.02
KNOCK_SECONDS = 0.05
START_KNOCK_POLL_SECONDS = 0.01  # how often to look for supervisord's socket at start
START_KNOCK_FOR_SECONDS = 3.0  # supervisord makes it in well under this; later, its own tick has come


def become_subreaper() -> bool:
    """Make orphaned descendants ours; False where the platform has no such thing (macOS)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def descendants(root: int) -> list[int]:
    return proctable.descendants(proctable.snapshot(), root)


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
            if signum == signal.SIGTERM:
                os.kill(pid, signal.SIGCONT)  # a stopped process would otherwise never see it


class Reaper:
    def __init__(self, argv: list[str], relay_fifo: Path | None, knock: Path | None = None) -> None:
        self.argv = argv
        self.knock_path = knock
        self.start_knock_until: float | None = None  # set while the start knock is still to come
        self.child = 0
        self.child_status: int | None = None
        self.stop_started: float | None = None
        self.wakeup_r, self.wakeup_w = os.pipe()
        self.relay_fds: tuple[int, int] | None = None
        if relay_fifo is not None:
            # Our own write end keeps the FIFO from reporting EOF while programs restart.
            read_fd = os.open(relay_fifo, os.O_RDONLY | os.O_NONBLOCK)
            self.relay_fds = (read_fd, os.open(relay_fifo, os.O_WRONLY | os.O_NONBLOCK))

    def run(self) -> int:
        for fd in (self.wakeup_r, self.wakeup_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wakeup_w)
        for signum in STOPPING:
            signal.signal(signum, self._on_stop_signal)
        # supervisord's own meanings (SIGHUP: reload, SIGUSR2: reopen logs) pass through unchanged.
        for signum in (signal.SIGHUP, signal.SIGUSR2):
            signal.signal(signum, self._forward)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop (wakeup fd)
        # Python ignores SIGPIPE and SIGXFSZ; supervisord gets the defaults, as when bash exec'd it.
        defaults = (signal.SIGPIPE, signal.SIGXFSZ)
        self.child = os.posix_spawnp(self.argv[0], self.argv, dict(os.environ), setsigdef=defaults)
        if self.stop_started is not None:  # told to stop while starting it
            self._forward(signal.SIGTERM, None)
        if self.knock_path is not None:
            self.start_knock_until = time.monotonic() + START_KNOCK_FOR_SECONDS
        while self.child_status is None:
            self._wait_for_events(self._wait_limit())
            self._reap()
            if self.child_status is None:
                self._knock_if_due()
            if self.child_status is None and self._seconds_left(SUPERVISORD_BUDGET_SECONDS) == 0:
                log.warning("supervisord did not stop in time: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.child, signal.SIGKILL)
        self.sweep()
        self._relay()
        code = os.waitstatus_to_exitcode(self.child_status)
        return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention

    def _on_stop_signal(self, signum: int, _frame: object) -> None:
        if self.stop_started is None:
            self.stop_started = time.monotonic()
        self._forward(signal.SIGTERM, _frame)

    def _forward(self, signum: int, _frame: object) -> None:
        if self.child and self.child_status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signum)

    def _wait_limit(self) -> float | None:
        """How long the loop may sleep: supervisord's stop budget, shorter while a knock is due."""
        left = self._seconds_left(SUPERVISORD_BUDGET_SECONDS)
        if self.knock_path is None:
            return left
        if left is not None:
            return min(left, KNOCK_SECONDS)
        return None if self.start_knock_until is None else START_KNOCK_POLL_SECONDS

    def _knock_if_due(self) -> None:
        """Wake supervisord's loop: once its socket exists at start, then at every turn while it stops."""
        if self.knock_path is None:
            return
        if self.stop_started is not None:
            self._knock()
        elif self.start_knock_until is not None:
            if self.knock_path.exists():
                self._knock()
                self.start_knock_until = None
            elif time.monotonic() > self.start_knock_until:
                self.start_knock_until = None  # supervisord's own tick has come meanwhile

    def _knock(self) -> None:
        assert self.knock_path is not None
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as knock:
            knock.settimeout(KNOCK_SECONDS)
            knock.connect(str(self.knock_path))  # not there (yet, or any more): nothing to wake

    def _seconds_left(self, budget: float) -> float | None:
        if self.stop_started is None:
            return None
        return max(0.0, self.stop_started + budget - time.monotonic())

    def _wait_for_events(self, timeout: float | None) -> None:
        watched = [self.wakeup_r] + ([self.relay_fds[0]] if self.relay_fds else [])
        ready, _, _ = select.select(watched, [], [], timeout)
        if self.wakeup_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wakeup_r, 4096)
        self._relay()

    def _reap(self) -> bool:
        """Collect every exited child (orphans included); False once no child is left."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.child:
                self.child_status = status

    def sweep(self) -> None:
        """SIGTERM to every descendant left, SIGKILL to what still lives after a grace; until none."""
        left = descendants(os.getpid())
        if not left:
            self._reap()
            return
        log.info("stopping %d process(es) left behind: %s", len(left), " ".join(map(str, left)))
        signal_all(left, signal.SIGTERM)
        budget_left = self._seconds_left(STOP_BUDGET_SECONDS - KILL_FOR_SECONDS)
        grace = SWEEP_GRACE_SECONDS if budget_left is None else min(SWEEP_GRACE_SECONDS, budget_left)
        grace_end = time.monotonic() + grace
        while time.monotonic() < grace_end and self._reap() and descendants(os.getpid()):
            self._relay()
            time.sleep(POLL_SECONDS)
        kill_end = time.monotonic() + KILL_FOR_SECONDS
        while (left := descendants(os.getpid())) and time.monotonic() < kill_end:
            signal_all(left, signal.SIGKILL)  # repeated: a child forked meanwhile is caught next turn
            self._reap()
            time.sleep(POLL_SECONDS)
        self._reap()
        if left:
            log.warning("still running after SIGKILL (stuck in the kernel?): %s", " ".join(map(str, left)))

    def _relay(self) -> None:
        if self.relay_fds is None:
            return
        while True:
            try:
                data = os.read(self.relay_fds[0], 65536)
            except BlockingIOError:
                return
            if not data:
                return
            with contextlib.suppress(OSError):  # the platform stopped reading: nothing else to tell it
                os.write(1, data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.reaper", description=__doc__.split("\n")[0])
    parser.add_argument("--relay", type=Path, help="a FIFO whose contents go to stdout (the platform log)")
    parser.add_argument(
        "--knock", type=Path, help="supervisord's socket, to wake its loop at start and while it stops"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- supervisord and its arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (python -m services.reaper -- COMMAND...)")
    logging.basicConfig(level=logging.INFO, format="[coding-agents] %(message)s", stream=sys.stderr)
    if not become_subreaper():
        log.warning(
            "this platform has no child subreaper: processes started in the background from a shell "
            "may outlive the app"
        )
    try:
        return Reaper(command, args.relay, args.knock).run()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            log.error("cannot start %s: %s", command[0], exc.strerror)
            return 127
        raise


if __name__ == "__main__":
    sys.exit(main())
