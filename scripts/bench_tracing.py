"""`scripts/bench tracing`: what MLflow tracing costs a Claude Code turn, offline.

    .venv/bin/python scripts/bench_tracing.py [RUNS]

The real Claude Code (installed by the setup runner from npm) answers one prompt with `claude -p`
through the model proxy from the fake models, RUNS times with tracing on (mlflow's Stop hook logging
each turn into the fake workspace's MLflow) and RUNS times off (baseline, same run, alternating).
Printed: the median wall time of a turn, both ways, and the traces the fake workspace recorded.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.config import PROJECT_ROOT, Settings  # noqa: E402
from tests.fake_models import FakeModels  # noqa: E402
from tests.fake_workspace import FakeWorkspace  # noqa: E402
from tests.helpers import short_tempdir, wait_until  # noqa: E402
from tests.model_proxy.test_agents_offline import OWNER, OWNER_PAT, PAT, Installed, offline_env  # noqa: E402

CLAUDE_ONLY = """agents:
  claude:
    title: Claude Code
    package: "@anthropic-ai/claude-code"
    version: "{version}"
    binary: claude
    launch: claude
    family: anthropic
    model: databricks-claude-opus-4-6
    configurer: claude
"""


def claude_version() -> str:
    from services.setup.registry import load

    agent = load().agent("claude")
    assert agent is not None
    return agent.version


def configure(installed: Installed, owner: dict[str, str], tracing: str) -> None:
    env = installed.env | owner | {"CODING_AGENTS_MLFLOW_TRACING": tracing}
    argv = [sys.executable, "-m", "services.setup.configure", "claude"]
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"configure failed: {done.stderr[-2000:]}")


def turn(installed: Installed, owner: dict[str, str]) -> float:
    started = time.monotonic()
    result = installed.run_with(owner, "claude", "-p", "Say pong.")
    if "PONG" not in result.stdout:
        sys.exit(f"no answer: {result.stdout[-1000:]} {result.stderr[-1000:]}")
    return time.monotonic() - started


def main(runs: int) -> None:
    root = short_tempdir("cab-")
    (root / "home").mkdir()
    (root / "agents.yaml").write_text(CLAUDE_ONLY.format(version=claude_version()))
    fake = FakeModels(tokens={PAT}, answer="PONG").start()
    workspace = FakeWorkspace().start()
    workspace.add_user(OWNER_PAT, OWNER, "Owner")
    env = offline_env(root, fake, "off")
    setup = subprocess.run(
        [sys.executable, "-m", "services.setup"], cwd=PROJECT_ROOT, env=env, capture_output=True
    )
    if setup.returncode != 0:
        sys.exit(f"setup failed:\n{setup.stdout[-3000:].decode(errors='replace')}")
    proxy = subprocess.Popen([sys.executable, "-m", "services.model_proxy"], cwd=PROJECT_ROOT, env=env)
    owner = {"DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": OWNER_PAT}
    try:
        status = Settings.from_env(env).files.model_proxy_status
        wait_until(status.exists, timeout=20, what="model proxy up")
        installed = Installed(root, env, fake)
        timings: dict[str, list[float]] = {"off": [], "claude": []}
        for tracing in ("off", "claude"):  # one untimed turn each: first-run caches
            configure(installed, owner, tracing)
            turn(installed, owner)
        for _ in range(runs):
            for tracing in ("off", "claude"):
                configure(installed, owner, tracing)
                timings[tracing].append(turn(installed, owner))
        traces = len(workspace.mlflow.traces)
        off, on = statistics.median(timings["off"]), statistics.median(timings["claude"])
        print(f"{'claude -p turn, tracing on':<34} {on:>9.2f} s   baseline tracing off {off:.2f} s")
        print(f"{'  cost of the Stop hook':<34} {on - off:>9.2f} s   ({runs} runs each, medians)")
        print(f"{'  traces logged':<34} {traces:>9}     expected {runs + 1}")
    finally:
        proxy.terminate()
        proxy.wait(10)
        fake.stop()
        workspace.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
