"""Configurers merge into the agents' own files: managed keys rewritten, the user's kept, no PAT."""

from __future__ import annotations

import json
import stat
import threading
import tomllib
from pathlib import Path

import pytest
import tomli_w

from services import state
from services.config import PROJECT_ROOT, Settings
from services.model_proxy.key import proxy_key
from services.setup.configure import main as configure_main
from services.setup.configurers import CONFIGURERS, merge_dotenv
from services.setup.registry import load
from services.setup.steps import StepContext, StepFailed, StepLog
from tests.helpers import wait_until

PAT = "dapi-secret-pat-never-in-configs"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "HOME": str(tmp_path / "home"),
            "CODING_AGENTS_STATE_DIR": str(tmp_path / "state"),
            "DATABRICKS_APP_PORT": "8100",
            "DATABRICKS_HOST": "https://w.example.com",
            "DATABRICKS_TOKEN": PAT,
        }
    )


def configure(settings: Settings, agent_id: str, env: dict[str, str] | None = None) -> None:
    agent = load().agent(agent_id)
    assert agent is not None and agent.configurer
    log = StepLog(settings.log_dir / "t.log")
    try:
        # Not probed here (the public servers are not for tests): tests/setup/test_mcp.py probes.
        step_env = {"DATABRICKS_TOKEN": PAT, "CODING_AGENTS_MCP_CHECK": "off"} | (env or {})
        CONFIGURERS[agent.configurer](StepContext(settings, step_env, log), agent)
    finally:
        log.close()


def home_files(settings: Settings) -> dict[str, str]:
    return {str(p.relative_to(settings.home)): p.read_text() for p in settings.home.rglob("*") if p.is_file()}


def test_claude(settings: Settings) -> None:
    path = settings.home / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"permissions": {"allow": ["Bash(ls)"]}, "env": {"MY_VAR": "mine"}}))
    (settings.home / ".claude.json").write_text(json.dumps({"mcpServers": {"mine": {"type": "stdio"}}}))
    configure(settings, "claude", {"ANTHROPIC_MODEL": "databricks-claude-sonnet-4-6"})
    data = json.loads(path.read_text())
    env = data["env"]
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8101/a/claude/anthropic"
    assert env["ANTHROPIC_AUTH_TOKEN"] == proxy_key(settings)
    assert env["ANTHROPIC_MODEL"] == "databricks-claude-sonnet-4-6"
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "databricks-claude-haiku-4-5"
    assert env["ANTHROPIC_CUSTOM_HEADERS"] == "x-databricks-use-coding-agent-mode: true"
    assert env["DISABLE_AUTOUPDATER"] == "1" and env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["MY_VAR"] == "mine" and data["permissions"] == {"allow": ["Bash(ls)"], "deny": ["WebSearch"]}
    profile = json.loads((settings.home / ".claude.json").read_text())
    assert profile["hasCompletedOnboarding"] is True
    assert profile["projects"][str(settings.projects_dir)]["hasTrustDialogAccepted"] is True
    assert set(profile["mcpServers"]) == {"mine", "deepwiki", "exa"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_gemini(settings: Settings) -> None:
    folder = settings.home / ".gemini"
    folder.mkdir(parents=True)
    (folder / ".env").write_text("# mine\nMY_KEY=1\nGEMINI_MODEL=old\n")
    (folder / "settings.json").write_text(json.dumps({"ui": {"theme": "Dracula"}}))
    configure(settings, "gemini")
    dotenv = (folder / ".env").read_text()
    assert "# mine\nMY_KEY=1\n" in dotenv
    assert "GEMINI_MODEL=databricks-gemini-3-1-pro\n" in dotenv and "GEMINI_MODEL=old" not in dotenv
    assert "GEMINI_API_KEY_AUTH_MECHANISM=bearer\n" in dotenv  # unquoted, or Gemini ignores it
    assert f"GOOGLE_GEMINI_BASE_URL={settings.model_proxy_url}/a/gemini/gemini\n" in dotenv
    data = json.loads((folder / "settings.json").read_text())
    assert data["ui"] == {"theme": "Dracula"}
    assert data["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert data["telemetry"]["enabled"] is False and data["mcpServers"]["exa"]["httpUrl"]
    trusted = json.loads((folder / "trustedFolders.json").read_text())
    assert trusted[str(settings.projects_dir)] == "TRUST_FOLDER"


def test_opencode_uses_its_own_provider_id(settings: Settings) -> None:
    path = settings.home / ".config" / "opencode" / "opencode.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"provider": {"mine": {"npm": "x"}}, "theme": "tokyonight"}))
    configure(settings, "opencode")
    data = json.loads(path.read_text())
    assert data["theme"] == "tokyonight" and "mine" in data["provider"]
    assert "databricks" not in data["provider"]  # would merge with OpenCode's built-in provider
    provider = data["provider"]["dbx-serving"]
    assert provider["options"]["baseURL"] == f"{settings.model_proxy_url}/a/opencode/openai/v1"
    assert data["model"] == "dbx-serving/databricks-claude-opus-4-6" == data["small_model"]
    assert provider["models"]["databricks-claude-opus-4-6"]["limit"] == {"context": 200000, "output": 16384}
    assert data["mcp"]["deepwiki"] == {
        "type": "remote",
        "url": "https://mcp.deepwiki.com/mcp",
        "enabled": True,
    }


def test_codex_toml_is_merged(settings: Settings) -> None:
    path = settings.home / ".codex" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('approval_policy = "on-request"\n\n[mcp_servers.mine]\ncommand = "x"\n')
    configure(settings, "codex")
    data = tomllib.loads(path.read_text())
    assert data["approval_policy"] == "on-request" and data["mcp_servers"]["mine"] == {"command": "x"}
    assert data["model_provider"] == "coding-agents-proxy" and data["model"] == "databricks-gpt-5-3-codex"
    provider = data["model_providers"]["coding-agents-proxy"]
    assert provider["wire_api"] == "responses"
    assert provider["base_url"] == f"{settings.model_proxy_url}/a/codex/openai/v1"
    assert data["projects"][str(settings.projects_dir)] == {"trust_level": "trusted"}
    assert data["analytics"] == {"enabled": False} and data["check_for_update_on_startup"] is False
    assert data["features"] == {"daemon_auto_start": False}
    # No Codex installed here to copy model metadata from: no catalog named (Codex would not start).
    assert "model_catalog_json" not in data


def test_no_config_holds_the_pat_and_reruns_converge(settings: Settings) -> None:
    for agent in ("claude", "gemini", "opencode", "codex"):
        configure(settings, agent)
    first = home_files(settings)
    for agent in ("claude", "gemini", "opencode", "codex"):
        configure(settings, agent)
    assert home_files(settings) == first
    assert not [name for name, text in first.items() if PAT in text]


def test_a_model_chosen_on_the_page_wins(settings: Settings) -> None:
    state.atomic_write_json(settings.files.agent_models, {"claude": "databricks-claude-haiku-4-5"})
    configure(settings, "claude", {"ANTHROPIC_MODEL": "databricks-claude-sonnet-4-6"})
    env = json.loads((settings.home / ".claude" / "settings.json").read_text())["env"]
    assert env["ANTHROPIC_MODEL"] == "databricks-claude-haiku-4-5"


def test_a_broken_file_fails_the_step_and_is_left_alone(settings: Settings) -> None:
    path = settings.home / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(StepFailed, match=r"settings.json is not valid JSON"):
        configure(settings, "claude")
    assert path.read_text() == "{not json"


def test_merge_dotenv() -> None:
    assert merge_dotenv("A=1\nexport B=2\nB=3\n# c\n", {"B": "9", "D": "4"}) == "A=1\nB=9\n# c\nD=4\n"


def test_mcp_servers_can_be_added_overridden_or_switched_off(settings: Settings) -> None:
    """CODING_AGENTS_MCP_SERVERS changes the defaults: name=url adds or overrides, name=off and off
    switch off; a server we wrote and then switched off is removed, the user's own never."""
    codex = settings.home / ".codex" / "config.toml"
    configure(settings, "codex")
    assert set(tomllib.loads(codex.read_text())["mcp_servers"]) == {"deepwiki", "exa"}
    configure(
        settings, "codex", {"CODING_AGENTS_MCP_SERVERS": "docs=https://mcp.internal.example/mcp,exa=off"}
    )
    servers = tomllib.loads(codex.read_text())["mcp_servers"]
    assert servers == {
        "docs": {"url": "https://mcp.internal.example/mcp"},
        "deepwiki": {"url": "https://mcp.deepwiki.com/mcp"},
    }
    # A server the user added under a default's name is theirs: kept when the defaults go off.
    data = tomllib.loads(codex.read_text())
    data["mcp_servers"]["deepwiki"] = {"url": "https://deepwiki.mine.example/mcp"}
    codex.write_text(tomli_w.dumps(data))
    configure(settings, "codex", {"CODING_AGENTS_MCP_SERVERS": "off"})
    assert tomllib.loads(codex.read_text())["mcp_servers"] == {
        "deepwiki": {"url": "https://deepwiki.mine.example/mcp"}
    }
    # `off` then a list: only those.
    configure(settings, "codex", {"CODING_AGENTS_MCP_SERVERS": "off,docs=https://mcp.internal.example/mcp"})
    assert set(tomllib.loads(codex.read_text())["mcp_servers"]) == {"deepwiki", "docs"}
    claude_state = settings.home / ".claude.json"
    configure(settings, "claude", {"CODING_AGENTS_MCP_SERVERS": "off"})
    assert json.loads(claude_state.read_text())["mcpServers"] == {}
    with pytest.raises(StepFailed, match="CODING_AGENTS_MCP_SERVERS: 'nourl' is not name=https://url"):
        configure(settings, "gemini", {"CODING_AGENTS_MCP_SERVERS": "nourl"})
    with pytest.raises(StepFailed, match="'docs=ftp://x' is not name=https://url or name=off"):
        configure(settings, "gemini", {"CODING_AGENTS_MCP_SERVERS": "docs=ftp://x"})


def test_agents_yaml_mcp_servers_apply_to_every_agent(settings: Settings, tmp_path: Path) -> None:
    registry = tmp_path / "agents.yaml"
    text = (PROJECT_ROOT / "agents.yaml").read_text()
    registry.write_text(text + "\nmcp_servers:\n  docs: https://mcp.internal.example/mcp\n  exa: off\n")
    env = {"CODING_AGENTS_REGISTRY": str(registry)}
    for agent in ("claude", "gemini", "opencode", "codex"):
        configure(settings, agent, env)
    home = settings.home
    assert set(json.loads((home / ".claude.json").read_text())["mcpServers"]) == {"deepwiki", "docs"}
    gemini = json.loads((home / ".gemini" / "settings.json").read_text())
    assert set(gemini["mcpServers"]) == {"deepwiki", "docs"}
    opencode = json.loads((home / ".config" / "opencode" / "opencode.json").read_text())
    assert set(opencode["mcp"]) == {"deepwiki", "docs"}
    assert set(tomllib.loads((home / ".codex" / "config.toml").read_text())["mcp_servers"]) == {
        "deepwiki",
        "docs",
    }
    # The environment beats agents.yaml.
    configure(settings, "claude", env | {"CODING_AGENTS_MCP_SERVERS": "exa=https://mcp.exa.ai/mcp,docs=off"})
    assert set(json.loads((home / ".claude.json").read_text())["mcpServers"]) == {"deepwiki", "exa"}


def test_a_second_rewrite_of_an_agents_settings_waits_for_the_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setup's step and a switch on the page (python -m services.setup.configure, its own process)
    each read, change and write the same files: run together, the later write would drop the
    earlier one's change. The configure entry point waits for the lock setup's step also takes."""
    path = settings.home / ".claude" / "settings.json"
    log_path = settings.files.setup_logs / "claude-config.log"
    monkeypatch.setenv("CODING_AGENTS_MCP_CHECK", "off")
    result: list[int] = []
    with state.exclusive(settings.files.configure_lock("claude")):
        thread = threading.Thread(target=lambda: result.append(configure_main(settings, ["claude"])))
        thread.start()
        wait_until(
            lambda: log_path.exists() and "waiting for another rewrite" in log_path.read_text(),
            timeout=20,
            what="the configure waiting for the lock",
        )
        assert not path.exists()  # nothing written while the other one holds the files
    thread.join(timeout=30)
    assert result == [0]
    assert json.loads(path.read_text())["env"]["ANTHROPIC_BASE_URL"].endswith("/a/claude/anthropic")
