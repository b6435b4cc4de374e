"""The real agent CLIs, installed by the setup runner from npm and configured only by the configurers,
talking through the real model proxy (its own process) to the fake model server, offline."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT, Settings
from services.setup.instructions import write_all
from services.setup.registry import load
from services.sync.agent_sessions import AgentSessions, matching
from services.sync.failures import OnceLog
from services.sync.gitrepo import git_env
from services.sync.plan import MAX_FILE_BYTES
from tests.black_hole import BlackHole
from tests.fake_mlflow import uploaded_spans
from tests.fake_models import FakeModels
from tests.fake_workspace import FakeWorkspace
from tests.helpers import env_for_subprocess, free_port, short_tempdir, wait_until

pytestmark = pytest.mark.slow

PAT = "dapi-owner-pat-offline-0123456789"
OWNER, OWNER_PAT = "owner@example.com", "dapi-owner-tracing-offline-0123456789"
PROMPT = "Reply with the word pong."
log = logging.getLogger(__name__)


@dataclass
class Installed:
    root: Path
    env: dict[str, str]
    fake: FakeModels

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    def agent_env(self) -> dict[str, str]:
        """What a shell in the terminal would have: no Databricks credential at all."""
        env = {k: v for k, v in self.env.items() if not k.startswith("DATABRICKS_")}
        env["PATH"] = f"{self.home / '.local' / 'bin'}:{env['PATH']}"
        env["TERM"] = "dumb"
        # Offline: no update checks or model catalogue downloads (the real network would allow them).
        env.update(OPENCODE_DISABLE_AUTOUPDATE="1", OPENCODE_DISABLE_MODELS_FETCH="1", NO_UPDATE_NOTIFIER="1")
        return env

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.run_with({}, *argv)

    def run_with(self, extra_env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
        projects = self.home / "projects"
        projects.mkdir(exist_ok=True)
        return subprocess.run(
            list(argv),
            cwd=projects,
            env=self.agent_env() | extra_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )


def offline_env(root: Path, fake: FakeModels, mcp_servers: str) -> dict[str, str]:
    """The app's environment for agents installed under `root`, its workspace the fake models."""
    port = free_port()
    # Not CI's CI=true: Gemini CLI reads it as "not interactive" and exits at once in a terminal.
    return {k: v for k, v in env_for_subprocess().items() if k != "CI"} | {
        "HOME": str(root / "home"),
        "CODING_AGENTS_STATE_DIR": str(root / "state"),
        "CODING_AGENTS_REGISTRY": str(root / "agents.yaml"),
        "DATABRICKS_APP_PORT": str(port - 1),
        "CODING_AGENTS_PROXY_PORT": str(port),
        "DATABRICKS_HOST": fake.url,
        "DATABRICKS_TOKEN": PAT,
        "CODING_AGENTS_MCP_SERVERS": mcp_servers,
    }


def install_agents(
    root: Path, fake: FakeModels, mcp_servers: str, only: tuple[str, ...] = ()
) -> dict[str, str]:
    """The shipped agents (or those in `only`) installed from npm under `root` by the real setup
    runner, as agents.yaml pins them; the environment to run them with."""
    (root / "home").mkdir()
    lines = ["agents:"]
    for a in load().agents:
        if only and a.id not in only:
            continue
        lines += [f"  {a.id}:", f"    title: {a.title}", f'    package: "{a.package}"']
        lines += [f'    version: "{a.version}"', f"    binary: {a.binary}", f"    launch: {a.launch}"]
        lines += [f"    family: {a.family}", f"    model: {a.model}", f"    configurer: {a.configurer}"]
    (root / "agents.yaml").write_text("\n".join(lines) + "\n")
    env = offline_env(root, fake, mcp_servers)
    setup = subprocess.run(
        [sys.executable, "-m", "services.setup"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if setup.returncode != 0:
        raise RuntimeError(f"setup failed:\n{setup.stdout[-4000:]}")
    return env


def start_model_proxy(root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The real model proxy in its own process (log: root/proxy.log), once it has written its status."""
    with (root / "proxy.log").open("wb") as log:
        proxy = subprocess.Popen(
            [sys.executable, "-m", "services.model_proxy"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    status = Settings.from_env(env).files.model_proxy_status
    wait_until(status.exists, timeout=30, what="the model proxy up")
    return proxy


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    root = short_tempdir("caa-")
    fake = FakeModels(tokens={PAT}, answer="PONG-FROM-FAKE-WORKSPACE").start()
    holes = (BlackHole(), BlackHole())
    # The default MCP servers as a locked-down workspace meets them: no answer. Setup's probe
    # switches them off (services/setup/mcp.py), so no agent waits for them.
    env = install_agents(root, fake, f"deepwiki={holes[0].url()},exa={holes[1].url()}")
    proxy = start_model_proxy(root, env)
    yield Installed(root, env, fake)
    proxy.terminate()
    proxy.wait(timeout=10)
    fake.stop()
    for hole in holes:
        hole.close()
    subprocess.run(["rm", "-rf", str(root)], check=False)


def check_reply(installed: Installed, result: subprocess.CompletedProcess[str], upstream_path: str) -> None:
    assert "PONG-FROM-FAKE-WORKSPACE" in result.stdout, (
        result.returncode,
        result.stdout[-2000:],
        result.stderr[-2000:],
    )
    calls = [c for c in installed.fake.model_calls() if c.path == upstream_path]
    assert calls, [c.path for c in installed.fake.model_calls()]
    assert all(c.headers["authorization"] == f"Bearer {PAT}" for c in calls)  # added by the proxy
    for folder in (".claude", ".gemini", ".config/opencode", ".codex"):
        for path in (installed.home / folder).rglob("*"):
            if path.is_file() and path.stat().st_size < 5_000_000:
                assert PAT not in path.read_text(errors="replace"), path
    assert PAT not in (installed.home / ".claude.json").read_text()


def test_claude_code(installed: Installed) -> None:
    result = installed.run("claude", "-p", PROMPT)
    check_reply(installed, result, "/serving-endpoints/anthropic/v1/messages")


def test_gemini_cli(installed: Installed) -> None:
    result = installed.run("gemini", "-p", PROMPT)
    check_reply(
        installed,
        result,
        "/serving-endpoints/gemini/v1beta/models/databricks-gemini-3-1-pro:streamGenerateContent",
    )


def test_opencode(installed: Installed) -> None:
    result = installed.run("opencode", "run", PROMPT)
    check_reply(installed, result, "/serving-endpoints/chat/completions")


def test_codex(installed: Installed) -> None:
    result = installed.run("codex", "exec", "--skip-git-repo-check", PROMPT)
    check_reply(installed, result, "/serving-endpoints/responses")
    # Setup gave it metadata for the Databricks model (services/setup/codex_models.py).
    assert "Model metadata" not in result.stderr, result.stderr[-2000:]


# First a turn, then the same conversation continued: each agent's own way of resuming.
RESUMES = {
    "claude": (("claude", "-p"), ("claude", "-p", "--continue")),
    "gemini": (("gemini", "-p"), ("gemini", "--resume", "latest", "-p")),
    "opencode": (("opencode", "run"), ("opencode", "run", "--continue")),
    "codex": (
        ("codex", "exec", "--skip-git-repo-check"),
        ("codex", "exec", "--skip-git-repo-check", "resume", "--last"),
    ),
}


@pytest.mark.parametrize("agent", list(RESUMES))
def test_a_conversation_resumes_after_home_is_wiped(installed: Installed, agent: str, tmp_path: Path) -> None:
    # What a redeploy does to HOME, with agents.yaml's `sessions:` globs kept by the sync's copy.
    globs = next(a.sessions for a in load().agents if a.id == agent)
    first, then = RESUMES[agent]
    word = f"QUOKKA{agent.upper()}"
    said = installed.run(*first, f"Remember the word {word}.")
    assert said.returncode == 0, (said.stdout[-1000:], said.stderr[-1000:])
    keeper = AgentSessions(
        installed.home, tmp_path / "projects", globs, git_env(installed.home), MAX_FILE_BYTES, OnceLog(log)
    )
    assert keeper.snapshot().committed
    kept = matching(installed.home, globs)
    for path in kept:  # the wipe, and the SQLite companions a live database leaves beside it
        for gone in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            gone.unlink(missing_ok=True)
    assert keeper.restore_home() == len(kept)
    calls_before = len(installed.fake.model_calls())
    resumed = installed.run(*then, "Which word did I ask you to remember?")
    assert resumed.returncode == 0, (resumed.stdout[-1000:], resumed.stderr[-1000:])
    asked = [c.body for c in installed.fake.model_calls()[calls_before:]]
    assert asked and any(word.encode() in body for body in asked), [b[:300] for b in asked]


def test_claude_code_sessions_are_traced_to_mlflow(installed: Installed) -> None:
    """Tracing switched on: the real Claude Code runs mlflow's Stop hook, which logs the turn as a
    trace into the owner's experiment of the fake workspace (services/setup/tracing.py)."""
    workspace = FakeWorkspace().start()
    workspace.add_user(OWNER_PAT, OWNER, "Owner")
    owner = {"DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": OWNER_PAT}
    configure = [sys.executable, "-m", "services.setup.configure", "claude"]
    try:
        env = installed.env | owner | {"CODING_AGENTS_MLFLOW_TRACING": "claude"}
        done = subprocess.run(
            configure, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        experiment = workspace.mlflow.by_name(f"/Users/{OWNER}/coding-agents")
        assert experiment is not None
        # The terminal's shells carry the owner's workspace credentials; the hook inherits them.
        result = installed.run_with(owner, "claude", "-p", "Count the quokkas, then say pong.")
        check_reply(installed, result, "/serving-endpoints/anthropic/v1/messages")

        # The hook answers Claude Code at once and logs the turn behind it: the trace, then its spans.
        def logged() -> str:
            traces = workspace.mlflow.traces_in(experiment["experiment_id"])
            spans = uploaded_spans(workspace, traces[0]["trace_id"]) if traces else []
            return json.dumps(spans) if spans else ""

        spans = wait_until(logged, timeout=60, what="a trace and its spans logged")
        assert len(workspace.mlflow.traces_in(experiment["experiment_id"])) == 1
        assert "Count the quokkas" in spans and "PONG-FROM-FAKE-WORKSPACE" in spans, spans[:2000]
    finally:
        off = installed.env | owner
        subprocess.run(configure, cwd=PROJECT_ROOT, env=off, capture_output=True, timeout=120, check=False)
        workspace.stop()


AGENT_RUNS = {
    "claude": ("claude", "-p", PROMPT),
    "gemini": ("gemini", "-p", PROMPT),
    "opencode": ("opencode", "run", PROMPT),
    "codex": ("codex", "exec", "--skip-git-repo-check", PROMPT),
}


@pytest.mark.parametrize("agent", sorted(AGENT_RUNS))
def test_agent_reads_the_instructions(installed: Installed, agent: str) -> None:
    """The global instruction file setup writes (services/setup/instructions.py) reaches the model."""
    settings = Settings.from_env(installed.env)
    assert not write_all(settings, lambda _line: None)
    seen = len(installed.fake.model_calls())
    result = installed.run(*AGENT_RUNS[agent])
    assert "PONG-FROM-FAKE-WORKSPACE" in result.stdout, (result.stdout[-2000:], result.stderr[-2000:])
    bodies = [c.body for c in installed.fake.model_calls()[seen:]]
    assert any(b"Heavy work goes to Databricks compute" in body for body in bodies), agent
