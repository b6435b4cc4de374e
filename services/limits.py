"""The limits that keep one machine alive, read from the environment (README, "Limits").

Separate from services/config.py's other settings so every number, its default and the variable
that overrides it live in one place; Settings.limits holds the parsed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class LimitsError(ValueError):
    """A limit variable holds something unusable; the message names it (services.config re-raises it
    as a ConfigError)."""


DEFAULT_MAX_SESSIONS = 20
# Agent windows in one session: each is a whole agent (0.2-1 GB), and a tab has one screen.
DEFAULT_MAX_WINDOWS = 10
# Terminal connections (each a `tmux attach` process): a few tabs and devices per session...
DEFAULT_MAX_CONNECTIONS_PER_SESSION = 8
# ...and for the whole app (the issue saw 400 at once, each spawning a tmux client).
DEFAULT_MAX_CONNECTIONS = 64
# What must stay free after a new session starts; agents need their footprint on top.
DEFAULT_MEMORY_FLOOR_MB = 256
# An agent without `memory_mb` in agents.yaml: about the heaviest Node agent measured, rounded up.
DEFAULT_AGENT_MEMORY_MB = 500
# The page warns below this share of the container's memory available.
DEFAULT_MEMORY_WARN_PERCENT = 15.0


@dataclass(frozen=True)
class Limits:
    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_windows: int = DEFAULT_MAX_WINDOWS
    max_connections_per_session: int = DEFAULT_MAX_CONNECTIONS_PER_SESSION
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    memory_floor_mb: int = DEFAULT_MEMORY_FLOOR_MB  # 0: no memory guard
    memory_warn_percent: float = DEFAULT_MEMORY_WARN_PERCENT
    # Node's --max-old-space-size for shells: None derives it from the container's limit, 0 is off.
    node_heap_mb: int | None = None
    # A folder standing in for / when reading memory (tests build a fake cgroup tree there).
    memory_root: Path = Path("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        heap_raw = env.get("CODING_AGENTS_NODE_HEAP_MB", "").strip().lower()
        if heap_raw == "off":
            heap: int | None = 0
        elif heap_raw:
            heap = whole_number(env, "CODING_AGENTS_NODE_HEAP_MB", minimum=64, hint="a number of MiB, or off")
        else:
            heap = None
        root = env.get("CODING_AGENTS_MEMORY_ROOT", "").strip()
        return cls(
            max_sessions=whole_number(env, "CODING_AGENTS_MAX_SESSIONS", DEFAULT_MAX_SESSIONS, minimum=1),
            max_windows=whole_number(env, "CODING_AGENTS_MAX_WINDOWS", DEFAULT_MAX_WINDOWS, minimum=1),
            max_connections_per_session=whole_number(
                env, "CODING_AGENTS_MAX_CONNECTIONS_PER_SESSION", DEFAULT_MAX_CONNECTIONS_PER_SESSION, 1
            ),
            max_connections=whole_number(
                env, "CODING_AGENTS_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, minimum=1
            ),
            memory_floor_mb=whole_number(
                env, "CODING_AGENTS_MEMORY_FLOOR_MB", DEFAULT_MEMORY_FLOOR_MB, minimum=0
            ),
            memory_warn_percent=float(
                whole_number(
                    env, "CODING_AGENTS_MEMORY_WARN_PERCENT", int(DEFAULT_MEMORY_WARN_PERCENT), 0, 100
                )
            ),
            node_heap_mb=heap,
            memory_root=Path(root) if root else Path("/"),
        )


def whole_number(
    env: Mapping[str, str],
    name: str,
    default: int = 0,
    minimum: int = 0,
    maximum: int = 1_000_000,
    hint: str = "",
) -> int:
    """A whole-number variable; unset or empty keeps `default` (config.py's settings read them too)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        shown = hint or f"a whole number from {minimum} to {maximum}"
        raise LimitsError(f"{name} must be {shown}, got {raw[:40]!r}")
    return value
