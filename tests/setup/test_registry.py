"""agents.yaml: every rule has its own clear error naming the file and the entry."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from services.setup import builtins
from services.setup.registry import (
    BUILTIN_NAMES,
    CONFIGURER_NAMES,
    DEFAULT_REGISTRY,
    FAMILIES,
    RegistryError,
    load,
)

AGENT = """
agents:
  claude:
    title: Claude Code
    package: "@anthropic-ai/claude-code"
    version: "2.1.197"
    binary: claude
    launch: claude
    family: anthropic
    model: databricks-claude-opus-4-6
    model_env: ANTHROPIC_MODEL
"""


def with_agent(**changes: str | None) -> str:
    """AGENT with fields replaced, removed (None) or added."""
    lines = []
    for line in AGENT.strip("\n").splitlines():
        key = line.strip().split(":", 1)[0]
        if line.startswith("    ") and key in changes:
            continue
        lines.append(line)
    lines += [f"    {key}: {value}" for key, value in changes.items() if value is not None]
    return "\n".join(lines) + "\n"


TOOL_DL = """
tools:
  micro:
    title: micro
    kind: download
    version: "2.0.14"
    binary: micro
    member: micro
    url:
      amd64: https://example.com/micro.tar.gz
"""

CASES = {
    "unknown top-level key": ("plugins: {}\n", "top level: unknown key 'plugins'"),
    "top level not a mapping": ("- a\n- b\n", "the top level must be a mapping"),
    "invalid yaml": ("agents:\n  claude: [\n", "not valid YAML: line"),
    "unknown key": (with_agent(colour="orange"), "agents.claude: unknown key 'colour'"),
    "missing field": (with_agent(binary=None), "agents.claude: missing field 'binary'"),
    "unpinned caret": (with_agent(version='"^2.1.0"'), "agents.claude: unpinned version '^2.1.0'"),
    "unpinned latest": (with_agent(version="latest"), "agents.claude: unpinned version 'latest'"),
    "unpinned number": (with_agent(version="2.1"), "agents.claude: unpinned version 2.1"),
    "unknown family": (with_agent(family="mistral"), "agents.claude: unknown family 'mistral'"),
    "bad package": (with_agent(package='"Claude Code"'), "agents.claude: 'package' 'Claude Code'"),
    "bad model env": (with_agent(model_env="anthropic-model"), "agents.claude: 'model_env'"),
    "unknown configurer": (with_agent(configurer="nope"), "agents.claude: unknown configurer 'nope'"),
    "bad timeout": (with_agent(timeout="-5"), "agents.claude: 'timeout' must be a positive number"),
    "memory not a number": (with_agent(memory_mb='"lots"'), "agents.claude: 'memory_mb' must be a positive"),
    "memory zero": (with_agent(memory_mb="0"), "agents.claude: 'memory_mb' must be a positive whole"),
    "memory fraction": (with_agent(memory_mb="0.5"), "agents.claude: 'memory_mb' must be a positive"),
    "skill dir outside home": (
        with_agent(skill_dirs="[../elsewhere]"),
        "agents.claude: 'skill_dirs' must be a list of folders relative to HOME",
    ),
    "sessions outside the agent's folders": (
        with_agent(sessions="[.claude/../.ssh/id_rsa]"),
        "agents.claude: 'sessions' must be a list of globs under HOME's dot-folders",
    ),
    "sessions not a dot-folder": (
        with_agent(sessions="[projects/*]"),
        "agents.claude: 'sessions' must be a list of globs under HOME's dot-folders",
    ),
    "bad id": (AGENT.replace("  claude:", "  Claude_Code:"), "agents.Claude_Code: ids are"),
    "unknown after": (with_agent(after="[ghost]"), "agents.claude: 'after' names 'ghost'"),
    "unknown kind": (
        "tools:\n  x:\n    title: X\n    kind: apt\n",
        "tools.x: unknown kind 'apt'",
    ),
    "unknown builtin": (
        "tools:\n  x:\n    title: X\n    kind: builtin\n    run: make_coffee\n",
        "tools.x: unknown builtin 'make_coffee'",
    ),
    "command not an argv": (
        "tools:\n  x:\n    title: X\n    kind: command\n    run: echo hi\n",
        "tools.x: 'run' must be a non-empty list of strings",
    ),
    "download without checksum": (TOOL_DL, "tools.micro: needs 'sha256' (per architecture) or 'sha256_url'"),
    "download over http": (
        TOOL_DL.replace("https://example.com", "http://example.com") + "    sha256_url: '{url}.sha'\n",
        "tools.micro: url for amd64 must be https://",
    ),
    "bad digest": (TOOL_DL + "    sha256:\n      amd64: abc\n", "sha256 for 'amd64' must be 64"),
    "checksum file over http": (
        TOOL_DL + "    sha256_url: http://example.com/sums.txt\n",
        "tools.micro: 'sha256_url' must be https://, or {url} (the asset's URL) and a suffix",
    ),
    "unknown arch": (
        TOOL_DL.replace("amd64:", "riscv:") + "    sha256_url: '{url}.sha'\n",
        "unknown architecture 'riscv'",
    ),
    "duplicate id": (
        AGENT + "tools:\n  claude:\n    title: X\n    kind: command\n    run: [true]\n",
        "tools.claude: id also used in agents",
    ),
    "mcp servers not a mapping": ("mcp_servers: [exa]\n", "mcp_servers: must map a server name"),
    "mcp server bad url": (
        "mcp_servers:\n  docs: ftp://docs.example/mcp\n",
        "mcp_servers.docs: must be an http(s):// URL, or off",
    ),
    "mcp server bad name": ("mcp_servers:\n  My Docs: https://d.example/mcp\n", "mcp_servers.My Docs: names"),
    "cycle": (
        "tools:\n"
        "  a:\n    title: A\n    kind: command\n    run: ['true']\n    after: [b]\n"
        "  b:\n    title: B\n    kind: command\n    run: ['true']\n    after: [a]\n",
        "'after' makes a cycle: a → b → a",
    ),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_each_rule_has_a_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: invalid registry:")
    assert expected in message, message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(with_agent(family="mistral", version="latest", binary=None))
    with pytest.raises(RegistryError) as err:
        load(path)
    assert len(err.value.problems) == 3, err.value.problems


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read the file"):
        load(tmp_path / "nope.yaml")


def test_the_shipped_registry_loads_pinned_and_complete() -> None:
    registry = load(DEFAULT_REGISTRY)
    assert {a.id for a in registry.agents} == {"claude", "gemini", "opencode", "codex"}
    assert {a.family for a in registry.agents} == set(FAMILIES)
    assert {"databricks-cli", "micro", "git-identity"} <= {t.id for t in registry.tools}
    cli = next(t for t in registry.tools if t.id == "databricks-cli")
    assert cli.url["amd64"].endswith(f"databricks_cli_{cli.version}_linux_amd64.zip")
    assert set(cli.sha256) == {"amd64", "arm64"}
    # gh: the release's checksums list by version, the archive's folder by version and architecture.
    gh = next(t for t in registry.tools if t.id == "gh")
    assert (
        gh.sha256_url
        == f"https://github.com/cli/cli/releases/download/v{gh.version}/gh_{gh.version}_checksums.txt"
    )
    assert gh.member == f"gh_{gh.version}_linux_{{arch}}/bin/gh" and set(gh.sha256) == {"amd64", "arm64"}
    # Every shipped agent says what a window of it needs, for the gateway's memory guard.
    assert {a.id: a.memory_mb for a in registry.agents} == {
        "claude": 300,
        "gemini": 400,
        "opencode": 1000,
        "codex": 460,
    }


def test_the_names_the_registry_accepts_are_the_ones_setup_implements() -> None:
    # The registry names them itself (loading it must not import step code: the gateway loads it).
    assert set(builtins.BUILTINS) == BUILTIN_NAMES
    assert set(builtins.CONFIGURERS) == CONFIGURER_NAMES


def test_the_shipped_agents_name_their_skill_folders() -> None:
    dirs = {a.id: a.skill_dirs for a in load(DEFAULT_REGISTRY).agents}
    assert dirs == {
        "claude": (".claude/skills",),
        "codex": (".agents/skills",),
        "gemini": (".agents/skills",),
        "opencode": (".agents/skills",),  # OPENCODE_DISABLE_CLAUDE_CODE_SKILLS: one folder, no duplicates
    }


def test_model_env_overrides_the_default(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(textwrap.dedent(AGENT))
    claude = load(path).agents[0]
    assert claude.current_model({}) == "databricks-claude-opus-4-6"
    assert (
        claude.current_model({"ANTHROPIC_MODEL": "databricks-claude-sonnet-4-6"})
        == "databricks-claude-sonnet-4-6"
    )


def test_mcp_servers_section(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(AGENT + "mcp_servers:\n  docs: https://d.example/mcp\n  exa: off\n  deepwiki: false\n")
    assert load(path).mcp_servers == {"docs": "https://d.example/mcp", "exa": None, "deepwiki": None}
    assert load(DEFAULT_REGISTRY).mcp_servers == {}
