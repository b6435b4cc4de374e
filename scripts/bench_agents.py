"""`scripts/bench agents`: each real agent's time to a usable prompt, offline against the fake models,
with the default MCP servers unreachable (a port that accepts connections and never answers, as a
firewall that drops packets does).

    .venv/bin/python scripts/bench_agents.py [RUNS]

Per agent, two figures, each the median of RUNS starts in a tmux pane with the app's environment:
- prompt: from the launch until its prompt is drawn;
- usable: from the launch until a prompt typed as soon as it is drawn reaches the model (an agent
  that draws its prompt while it still waits for its MCP servers queues what is typed).
Now: setup's probe switched the unreachable servers off (services/setup/mcp.py). Baseline, same run:
the same agent with the servers written into its config anyway (CODING_AGENTS_MCP_CHECK=off), as
before the probe. One untimed start per agent first (first-run caches).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.config import Settings  # noqa: E402
from services.setup import mcp  # noqa: E402
from services.setup.configurers import CONFIGURERS  # noqa: E402
from services.setup.registry import load  # noqa: E402
from services.setup.steps import StepContext, StepLog  # noqa: E402
from tests.black_hole import BlackHole  # noqa: E402
from tests.fake_models import FakeModels  # noqa: E402
from tests.helpers import short_tempdir, wait_until  # noqa: E402
from tests.model_proxy.test_agent_keys import PROMPT_READY, agent_in_tmux  # noqa: E402
from tests.model_proxy.test_agents_offline import (  # noqa: E402
    PAT,
    Installed,
    install_agents,
    start_model_proxy,
)

AGENTS = ("claude", "gemini", "opencode", "codex")
DEADLINE = 120.0


def row(label: str, value: str, baseline: str) -> None:
    print(f"{label:<34} {value:>12}   baseline {baseline}")


def configure(installed: Installed, probe: bool) -> None:
    """Rewrite every agent's config: with the probe (now) or without it (baseline)."""
    settings = Settings.from_env(installed.env)
    env = dict(installed.env) | ({} if probe else {mcp.CHECK_ENV: "off"})
    registry = load(Path(installed.env["CODING_AGENTS_REGISTRY"]))
    for agent in registry.agents:
        log = StepLog(settings.log_dir / "bench" / f"{agent.id}.log")
        try:
            CONFIGURERS[agent.configurer](StepContext(settings, env, log), agent)
        finally:
            log.close()


def start(installed: Installed, agent: str, word: str) -> tuple[float, float]:
    """(seconds to the prompt drawn, seconds to the first model request), from the launch."""
    began = time.monotonic()
    with agent_in_tmux(installed, agent, as_in_the_app=True) as pane:
        pane.wait(lambda s: PROMPT_READY[agent].search(s), f"{agent}'s prompt", timeout=DEADLINE)
        drawn = time.monotonic() - began
        before = len(installed.fake.model_calls())
        pane.type(word.encode())
        pane.wait(lambda s: word in s, "the prompt typed", timeout=DEADLINE)
        pane.type(b"\r")

        def asked() -> bool:
            return any(word.encode() in call.body for call in installed.fake.model_calls()[before:])

        wait_until(asked, timeout=DEADLINE, interval=0.05, what=f"{agent}'s first model request")
        return drawn, time.monotonic() - began


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"# scripts/bench agents — {time.strftime('%Y-%m-%d %H:%M')}, median of {runs} starts")
    root = short_tempdir("ca-bench-agents-")
    fake = FakeModels(tokens={PAT}, answer="PONG-FROM-FAKE-WORKSPACE").start()
    holes = (BlackHole(), BlackHole())
    proxy = None
    try:
        env = install_agents(root, fake, f"deepwiki={holes[0].url()},exa={holes[1].url()}")
        proxy = start_model_proxy(root, env)
        installed = Installed(root, env, fake)
        figures: dict[tuple[str, bool], list[tuple[float, float]]] = {}
        for agent in AGENTS:
            configure(installed, probe=True)
            start(installed, agent, "bench warm up")
            for run in range(runs):
                # Interleaved, in turns first: the machine's load and any order effect fall on both.
                for probe in (False, True) if run % 2 == 0 else (True, False):
                    configure(installed, probe)
                    mcp.forget_checks()
                    figures.setdefault((agent, probe), []).append(start(installed, agent, f"bench {run}"))
        for agent in AGENTS:
            now, before = figures[(agent, True)], figures[(agent, False)]
            for index, what in ((0, "prompt"), (1, "usable")):
                value = statistics.median(f[index] for f in now)
                baseline = statistics.median(f[index] for f in before)
                unreachable = f"{baseline:.1f} s (MCP servers unreachable, left on)"
                row(f"{agent}: {what}", f"{value:.1f} s", unreachable)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        fake.stop()
        for hole in holes:
            hole.close()
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
