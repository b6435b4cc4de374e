"""The one way a program under supervisord starts: `entry.run("gateway", main)` in its __main__.

Every program logs in one format (services.platform_log.setup_logging), reads Settings once, and
ends with the same exit codes, which supervisord.conf and the setup page rely on:
  0  done (or, for a long-running program, stopped on request)
  1  ran and failed (setup: a step failed)
  2  cannot start: a bad setting (announced on the platform log with the fix) or a bad registry
  3  another copy holds the lock (setup, sync)
  78 tmuxd only: no usable tmux binary, an expected exit (supervisord.conf `exitcodes=78`)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

from services.config import ConfigError, Settings
from services.platform_log import CONFIG_FIX, announce, setup_logging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3


def start(name: str) -> Settings | None:
    """Logging for `name`, then its Settings; None (after saying why on the platform log) when a
    setting is unusable."""
    setup_logging(name)
    try:
        return Settings.from_env()
    except ConfigError as exc:
        announce(f"{name} cannot start: {exc}", CONFIG_FIX)
        return None


def run(name: str, main: Callable[[Settings], int], exit: Callable[[int], object] = sys.exit) -> NoReturn:
    """Start `name` and exit with what `main` returns (EXIT_CONFIG without usable settings).

    `exit`: sync ends with os._exit, as its threads may sit in an HTTP call nothing waits for."""
    settings = start(name)
    code = EXIT_CONFIG if settings is None else main(settings)
    exit(code)
    raise SystemExit(code)
