"""`scripts/bench stop`: how long the whole app takes to stop, SIGTERM to nothing left running.

Ours: the platform's SIGTERM to scripts/run (services.reaper), which knocks on supervisord's control
socket while it stops its programs. Baseline, in the same run: SIGTERM straight to supervisord, which
then stops them on its own one-second ticks (the reaper neither forwards nor knocks), as before the
knock. Databricks Apps sends SIGKILL 15 s after SIGTERM.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from bench import ctl_output, healthy, launch, private_stack, row, shut_down  # noqa: E402

from tests.helpers import wait_until  # noqa: E402

RUNS = 5


def one_stop(knocked: bool) -> float:
    """Seconds from SIGTERM until scripts/run has exited (it exits after every process is gone)."""
    root, env, url = private_stack()
    proc = launch(env)
    try:
        wait_until(lambda: healthy(url), timeout=60, what="gateway /health")
        # Every program up and setup's one-shot done: the stop of a running app, not of a start.
        wait_until(lambda: "RUNNING" in ctl_output(env, "status", "tmux"), timeout=60, what="tmux RUNNING")
        wait_until(lambda: "EXITED" in ctl_output(env, "status", "setup"), timeout=60, what="setup done")
        supervisord = int((Path(env["CODING_AGENTS_STATE_DIR"]) / "supervisord.pid").read_text())
        started = time.monotonic()
        os.kill(proc.pid if knocked else supervisord, signal.SIGTERM)
        proc.wait(20)
        return time.monotonic() - started
    finally:
        shut_down(proc, root)


def main() -> None:
    print(f"# scripts/bench stop — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores, {RUNS} runs")
    ours: list[float] = []
    before: list[float] = []
    for _ in range(RUNS):  # interleaved: the machine's drift hits both alike
        ours.append(one_stop(knocked=True))
        before.append(one_stop(knocked=False))
    row(
        "app stop: SIGTERM -> nothing left (median)",
        f"{statistics.median(ours):.2f} s",
        f"{statistics.median(before):.2f} s",
        "< 15 s (SIGKILL)",
    )
    row("  slowest of the runs", f"{max(ours):.2f} s", f"{max(before):.2f} s", "")


if __name__ == "__main__":
    main()
