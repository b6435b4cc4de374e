"""What a burst of session requests and terminal connections costs, with the default limits and with
them effectively off (the baseline), in the same run (README, "Limits").

    .venv/bin/python scripts/bench_limits.py [SESSIONS] [CONNECTIONS]

Each run starts the whole app with scripts/run (own HOME, state dir and port), asks for SESSIONS
sessions at 1000x500 one after another, then opens CONNECTIONS WebSockets to `main` at once, and
reads the RSS of the tmux server and of the gateway with its `tmux attach` children.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Stack  # noqa: E402
from tests.e2e.conftest import RunningApp, start_app, stop_app  # noqa: E402
from tests.helpers import TermClient, free_port, short_tempdir, stack_env  # noqa: E402

TOKEN = "bench-token-0123456789"
UNLIMITED = {
    "CODING_AGENTS_MAX_SESSIONS": "1000000",
    "CODING_AGENTS_MAX_CONNECTIONS": "1000000",
    "CODING_AGENTS_MAX_CONNECTIONS_PER_SESSION": "1000000",
    "CODING_AGENTS_MEMORY_FLOOR_MB": "0",
}


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses: the fields start after the last ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_mib(pid: int) -> float:
    return sum(rss_mib(p) for p in [pid, *descendants(pid)])


def attach_clients(gateway: int) -> int:
    def cmdline(pid: int) -> bytes:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return b""

    return sum(1 for pid in descendants(gateway) if b"attach-session" in cmdline(pid))


def create_sessions(app: RunningApp, count: int) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    created = refused = 0
    for i in range(count):
        body = json.dumps({"name": f"s{i}", "cols": 1000, "rows": 500}).encode()
        request = urllib.request.Request(app.url + "/api/sessions", body, headers, method="POST")
        try:
            urllib.request.urlopen(request, timeout=60).close()
            created += 1
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise
            refused += 1
    return created, refused


async def connect_all(app: RunningApp, count: int, gateway: int) -> tuple[int, int, float]:
    """Open `count` WebSockets to main at once; how many got in, the attach clients, the RSS."""

    async def one() -> TermClient:
        client = await TermClient.connect(app.url, "main", TOKEN)
        await client.read_until(lambda c: c.closed or any(m.get("type") == "ready" for m in c.messages), 120)
        return client

    clients = await asyncio.gather(*(one() for _ in range(count)))
    opened = sum(not c.closed for c in clients)
    attached, rss = attach_clients(gateway), tree_mib(gateway)
    for client in clients:
        client.close()
    return opened, attached, rss


def measure(extra: dict[str, str], sessions: int, connections: int) -> dict[str, Any]:
    root = short_tempdir("bench-limits-")
    home = root / "home"
    home.mkdir()
    port = free_port()
    env = stack_env(home, root / "state", port, TOKEN, **extra)
    app = start_app(Stack(root, home, root / "state", port, TOKEN, env))
    try:
        gateway, tmux = app.program_pid("gateway"), app.program_pid("tmux")
        tmux_idle, gateway_idle = tree_mib(tmux), tree_mib(gateway)
        started = time.monotonic()
        created, refused = create_sessions(app, sessions)
        session_seconds = time.monotonic() - started
        tmux_after = tree_mib(tmux)
        opened, attached, gateway_after = asyncio.run(connect_all(app, connections, gateway))
        return {
            "sessions created / refused": f"{created} / {refused} in {session_seconds:.1f} s",
            "tmux server RSS": f"{tmux_idle:.0f} -> {tmux_after:.0f} MiB",
            "connections open / refused": f"{opened} / {connections - opened}",
            "tmux attach processes": str(attached),
            "gateway + attach clients RSS": f"{gateway_idle:.0f} -> {gateway_after:.0f} MiB",
        }
    finally:
        stop_app(app)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    limited = measure({}, sessions, connections)
    baseline = measure(UNLIMITED, sessions, connections)
    print(f"{sessions} session requests (1000x500), then {connections} WebSockets to main at once")
    print(f"{'':32} {'default limits':>28} {'limits off (baseline)':>28}")
    for key in limited:
        print(f"{key:32} {limited[key]:>28} {baseline[key]:>28}")


if __name__ == "__main__":
    main()
