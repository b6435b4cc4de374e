"""`scripts/bench tracing`: what MLflow tracing costs a Claude Code turn, offline.

    .venv/bin/python scripts/bench_tracing.py [RUNS]

The real Claude Code (installed by the setup runner from npm) answers one prompt with `claude -p`
through the model proxy from the fake models, RUNS times with tracing on (mlflow's Stop hook logging
each turn into the fake workspace's MLflow) and RUNS times off (baseline, same run, alternating).
Printed: the median wall time of a turn, both ways; with tracing, how long after the turn's start its
trace had landed (the hook answers Claude Code at once and logs behind it, services/setup/
mlflow_stop_hook.py), and the traces the fake workspace recorded.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.config import PROJECT_ROOT  # noqa: E402
from tests.fake_models import FakeModels  # noqa: E402
from tests.fake_workspace import FakeWorkspace  # noqa: E402
from tests.helpers import short_tempdir, wait_until  # noqa: E402
from tests.model_proxy.test_agents_offline import (  # noqa: E402
    OWNER,
    OWNER_PAT,
    PAT,
    Installed,
    install_agents,
    start_model_proxy,
)


def configure(installed: Installed, owner: dict[str, str], tracing: str) -> None:
    env = installed.env | owner | {"CODING_AGENTS_MLFLOW_TRACING": tracing}
    argv = [sys.executable, "-m", "services.setup.configure", "claude"]
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"configure failed: {done.stderr[-2000:]}")


def turn(installed: Installed, owner: dict[str, str], workspace: FakeWorkspace) -> tuple[float, float]:
    """(the turn's wall time, when its trace had landed, or 0 without tracing), from its start."""
    before = len(workspace.mlflow.spans)
    started = time.monotonic()
    result = installed.run_with(owner, "claude", "-p", "Say pong.")
    if "PONG" not in result.stdout:
        sys.exit(f"no answer: {result.stdout[-1000:]} {result.stderr[-1000:]}")
    took = time.monotonic() - started
    traced = "MLFLOW_EXPERIMENT_ID" in (installed.home / ".claude" / "settings.json").read_text()
    if not traced:
        return took, 0.0
    wait_until(lambda: len(workspace.mlflow.spans) > before, timeout=120, what="the turn's trace")
    return took, time.monotonic() - started


def main(runs: int) -> None:
    root = short_tempdir("cab-")
    fake = FakeModels(tokens={PAT}, answer="PONG").start()
    workspace = FakeWorkspace().start()
    workspace.add_user(OWNER_PAT, OWNER, "Owner")
    env = install_agents(root, fake, "off", only=("claude",))
    proxy = start_model_proxy(root, env)
    owner = {"DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": OWNER_PAT}
    try:
        installed = Installed(root, env, fake)
        timings: dict[str, list[float]] = {"off": [], "claude": []}
        landed: list[float] = []
        for tracing in ("off", "claude"):  # one untimed turn each: first-run caches
            configure(installed, owner, tracing)
            turn(installed, owner, workspace)
        for _ in range(runs):
            for tracing in ("off", "claude"):
                configure(installed, owner, tracing)
                took, logged = turn(installed, owner, workspace)
                timings[tracing].append(took)
                if logged:
                    landed.append(logged)
        traces = len(workspace.mlflow.traces)
        off, on = statistics.median(timings["off"]), statistics.median(timings["claude"])
        print(f"{'claude -p turn, tracing on':<34} {on:>9.2f} s   baseline tracing off {off:.2f} s")
        print(f"{'  cost of the Stop hook':<34} {on - off:>9.2f} s   ({runs} runs each, medians)")
        print(f"{'  trace landed after':<34} {statistics.median(landed):>9.2f} s   from the turn's start")
        print(f"{'  traces logged':<34} {traces:>9}     expected {runs + 1}")
    finally:
        proxy.terminate()
        proxy.wait(10)
        fake.stop()
        workspace.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
