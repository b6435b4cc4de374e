"""The platform log: one plain line for every failure a user must see, where the platform shows logs.

Databricks Apps shows only the app command's stdout, which is supervisord's own output. Each program's
stdout is its full log in `$STATE/logs/<program>.log`; its stderr goes to supervisord's stdout
(supervisord.conf: `stderr_logfile=%(ENV_CODING_AGENTS_PLATFORM_LOG)s`, set by scripts/run). So every
process logs to stdout, and `announce` writes the few lines that matter (the reason and the fix) to
stderr, and to the full log too. A crash's traceback lands on stderr as well: it reaches the platform
log without any help. That setting is a FIFO which services.reaper (scripts/run's own process, which
holds the platform's stdout) copies to its stdout: a root-made stdout cannot be reopened by name.
"""

from __future__ import annotations

import logging
import sys
import threading

from services import redact

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
    line = redact.redact(format_line(what, fix))
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
    """Every program's log format: to stdout, which supervisord writes to `$STATE/logs/<program>.log`.
    Secrets are masked in the finished line, tracebacks and library messages included."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(RedactingFormatter(f"%(asctime)s {program} %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact.redact(super().format(record))
