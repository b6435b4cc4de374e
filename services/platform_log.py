"""The platform log: one plain line for every failure a user must see, where the platform shows logs.

Databricks Apps shows only the app command's stdout, which is supervisord's own output. Each program's
stdout is its full log in `$STATE/logs/<program>.log`; its stderr goes to supervisord's stdout
(supervisord.conf: `stderr_logfile=%(ENV_CODING_AGENTS_PLATFORM_LOG)s`, set by scripts/run). So every
process logs to stdout, and `announce` writes the few lines that matter (the reason and the fix) to
stderr, and to the full log too. A crash's traceback lands on stderr as well: it reaches the platform
log without any help.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
from pathlib import Path

PREFIX = "[coding-agents]"
MAX_LINE = 1000
CONFIG_FIX = "fix the variable in app.yaml (or the environment) and restart"

log = logging.getLogger("platform")
_last: dict[str, str] = {}
_lock = threading.Lock()


def format_line(what: str, fix: str = "") -> str:
    """`[coding-agents] what; fix` on one line, control characters flattened, at most MAX_LINE long."""
    text = what.strip() + (f"; {fix.strip()}" if fix.strip() else "")
    flat = " ".join(text.split())
    if len(flat) > MAX_LINE:
        flat = flat[: MAX_LINE - 1] + "…"
    return f"{PREFIX} {flat}"


def announce(what: str, fix: str = "", key: str | None = None) -> None:
    """Put one line on the platform log. With `key`, a repeat of that key's last line is skipped, so a
    retry loop says a failure once and again only when its reason changes."""
    line = format_line(what, fix)
    if key is not None:
        with _lock:
            if _last.get(key) == line:
                return
            _last[key] = line
    log.warning("%s", line.removeprefix(PREFIX + " "))
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone: the full log still has the line
        pass


def resolved(key: str, what: str) -> None:
    """Say once that a failure announced under `key` is over (e.g. the owner lookup succeeded)."""
    with _lock:
        had_failure = key in _last
        _last.pop(key, None)
    if had_failure:
        announce(what)


def setup_logging(program: str, level: int = logging.INFO) -> None:
    """Every program's log format: to stdout, which supervisord writes to `$STATE/logs/<program>.log`."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {program} %(name)s %(levelname)s %(message)s",
        stream=sys.stdout,
        force=True,
    )


def relay(fifo: Path, watched_pid: int, out_fd: int = 1) -> None:
    """Copy what programs write into `fifo` to `out_fd` until `watched_pid` (supervisord) exits.

    supervisord writes each program's stderr to a file it opens by name; the platform's stdout may be
    a pipe or file this user cannot reopen by name (/dev/stdout of a root-made pipe), so scripts/run
    hands supervisord this FIFO, and this relay, which inherited the real stdout, copies it across.
    Holding a write end of its own means no EOF while programs restart; the pidfd ends it.
    """
    read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep_open = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        watched = os.pidfd_open(watched_pid)
    except ProcessLookupError:
        return
    try:
        while True:
            ready, _, _ = select.select([read_fd, watched], [], [])
            if read_fd in ready:
                _copy_available(read_fd, out_fd)
            if watched in ready:
                _copy_available(read_fd, out_fd)  # the last words of programs stopping with it
                return
    finally:
        for fd in (read_fd, keep_open, watched):
            os.close(fd)


def _copy_available(read_fd: int, out_fd: int) -> None:
    while True:
        try:
            data = os.read(read_fd, 65536)
        except BlockingIOError:
            return
        if not data:
            return
        with contextlib.suppress(OSError):  # the platform stopped reading: nothing else to tell it
            os.write(out_fd, data)


if __name__ == "__main__":
    # scripts/run: python -m services.platform_log FIFO PID
    relay(Path(sys.argv[1]), int(sys.argv[2]))
