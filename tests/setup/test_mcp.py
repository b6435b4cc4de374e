"""MCP servers are checked at setup: one that does not answer is switched off in every agent's
config with a note in the step's log, and on again at the next setup that reaches it. Real HTTP
servers and a real black hole (a port that accepts connections and never answers) on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services.config import Settings
from services.setup import mcp
from services.setup.configure import main as configure_main
from services.setup.configurers import CONFIGURERS
from services.setup.registry import load
from services.setup.steps import StepContext, StepLog
from services.statefiles import save_model_choice
from tests.black_hole import BlackHole
from tests.helpers import free_port

AGENTS = ("claude", "gemini", "opencode", "codex")


class NotHere(BaseHTTPRequestHandler):
    """An MCP endpoint as a plain GET finds it: 405, which still means the server is up."""

    def do_GET(self) -> None:
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


class Answering:
    def __init__(self, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), NotHere)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    mcp.forget_checks()
    yield Settings.from_env(
        {
            "HOME": str(tmp_path / "home"),
            "CODING_AGENTS_STATE_DIR": str(tmp_path / "state"),
            "DATABRICKS_APP_PORT": "8100",
        }
    )
    mcp.forget_checks()


def configure(settings: Settings, agent_id: str, env: dict[str, str]) -> list[str]:
    agent = load().agent(agent_id)
    assert agent is not None
    log = StepLog(settings.log_dir / f"{agent_id}.log")
    try:
        CONFIGURERS[agent.configurer](StepContext(settings, env, log), agent)
    finally:
        log.close()
    return list(log.lines)


def servers_of(settings: Settings) -> dict[str, set[str]]:
    home = settings.home
    return {
        "claude": set(json.loads((home / ".claude.json").read_text())["mcpServers"]),
        "gemini": set(json.loads((home / ".gemini" / "settings.json").read_text())["mcpServers"]),
        "opencode": set(json.loads((home / ".config" / "opencode" / "opencode.json").read_text())["mcp"]),
        "codex": set(tomllib.loads((home / ".codex" / "config.toml").read_text())["mcp_servers"]),
    }


def test_unreachable_servers_are_switched_off_and_come_back(settings: Settings) -> None:
    up_port, hole = free_port(), BlackHole()
    hole_port = hole.port
    up = Answering(up_port)
    env = {
        "CODING_AGENTS_MCP_SERVERS": (
            f"deepwiki=http://127.0.0.1:{up_port}/mcp,exa=http://127.0.0.1:{hole_port}/mcp"
        )
    }
    try:
        logs = {agent: configure(settings, agent, env) for agent in AGENTS}
        assert servers_of(settings) == {agent: {"deepwiki"} for agent in AGENTS}
        for lines in logs.values():
            assert any(
                "MCP: deepwiki; exa switched off, unreachable (no answer in 3 s)" in line for line in lines
            ), lines
        # The user's own server under another name is never touched.
        path = settings.home / ".claude.json"
        profile = json.loads(path.read_text())
        profile["mcpServers"]["mine"] = {"type": "http", "url": f"http://127.0.0.1:{hole_port}/mine"}
        path.write_text(json.dumps(profile))

        # The next setup (a new process: no remembered verdict) reaches exa: it is on again.
        hole.close()
        hole_answers = Answering(hole_port)
        try:
            mcp.forget_checks()
            for agent in ("claude", "gemini", "opencode", "codex"):
                configure(settings, agent, env)
            servers = servers_of(settings)
            assert servers.pop("claude") == {"deepwiki", "exa", "mine"}
            assert servers == {key: {"deepwiki", "exa"} for key in ("gemini", "opencode", "codex")}

            # Now deepwiki stops answering (connection refused): off again.
            up.close()
            mcp.forget_checks()
            lines = configure(settings, "codex", env)
            assert any("deepwiki switched off, unreachable (Connection refused)" in x for x in lines), lines
            assert servers_of(settings)["codex"] == {"exa"}
        finally:
            hole_answers.close()
    finally:
        hole.close()
        up.close()


def test_the_probe_runs_once_for_all_configure_steps(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """All four configure steps share one probe: the setup waits at most one deadline, not four.
    The platform log says which server is off."""
    hole = BlackHole()
    try:
        servers = {"exa": hole.url()}
        first = mcp.check(settings, servers, {}, timeout=0.5)
        assert first.unreachable == {"exa": "no answer in 0.5 s"}
        assert mcp.check(settings, servers, {}, timeout=0.5) is first
        platform = capsys.readouterr().err
        said = f"[coding-agents] MCP server exa ({hole.url()}) did not answer (no answer in 0.5 s)"
        assert said in platform
    finally:
        hole.close()


def test_the_check_can_be_switched_off(settings: Settings) -> None:
    hole_port = free_port()
    env = {"CODING_AGENTS_MCP_SERVERS": f"off,docs=http://127.0.0.1:{hole_port}/mcp"}
    configure(settings, "codex", env | {"CODING_AGENTS_MCP_CHECK": "off"})
    assert servers_of_codex(settings) == {"docs"}


def servers_of_codex(settings: Settings) -> set[str]:
    return set(tomllib.loads((settings.home / ".codex" / "config.toml").read_text())["mcp_servers"])


def choose_model(settings: Settings, agent_id: str, model: str, env: dict[str, str]) -> None:
    """What the gateway does for a model chosen on the page: record it, then run
    `python -m services.setup.configure AGENT` (here in-process, with that process's environment)."""
    save_model_choice(settings.files.agent_models, agent_id, model)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert configure_main(settings, [agent_id]) == 0


def test_the_model_picker_keeps_setups_verdict_without_probing(settings: Settings) -> None:
    """A model chosen on the page rewrites the config through services.setup.configure: it takes
    setup's last verdict instead of probing servers from a request."""
    hole = BlackHole()
    env = {"CODING_AGENTS_MCP_SERVERS": f"off,exa={hole.url()}"}
    try:
        configure(settings, "codex", env)
    finally:
        hole.close()
    assert servers_of_codex(settings) == set()
    answering = Answering(hole.port)  # exa answers now, but only the next setup will look
    try:
        mcp.forget_checks()
        choose_model(settings, "codex", "databricks-gpt-5-4", env)
        assert servers_of_codex(settings) == set()
        config = tomllib.loads((settings.home / ".codex" / "config.toml").read_text())
        assert config["model"] == "databricks-gpt-5-4"
        mcp.check_file(settings).unlink()  # no verdict at all: written as configured
        choose_model(settings, "codex", "databricks-gpt-5-4", env)
        assert servers_of_codex(settings) == {"exa"}
    finally:
        answering.close()
