"""The agents' global instruction files: rendered from one template by the real setup runner, merged
with the user's own text, which stays byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.config import PROJECT_ROOT
from services.databricks import Owner, save_owner
from services.setup import instructions
from services.setup.instructions import BEGIN, END, INSTRUCTION_FILES, InstructionsError
from tests.setup.conftest import SetupEnv

# The app's agents.yaml (the agents, their skill folders), of which only the skills step runs here.
ONLY_SKILLS = ("--only", "skills")
OWNER = "alice@example.com"


def only_shipped_skills(setup_env: SetupEnv) -> None:
    """No upstream collections (no network in tests): the shipped skills are installed."""
    empty = setup_env.root / "sources.yaml"
    empty.write_text("sources: []\n")
    setup_env.env["CODING_AGENTS_SKILL_SOURCES"] = str(empty)
    setup_env.registry((PROJECT_ROOT / "agents.yaml").read_text())


def ours(text: str) -> str:
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def test_setup_writes_every_agents_file(setup_env: SetupEnv) -> None:
    only_shipped_skills(setup_env)
    save_owner(setup_env.settings, Owner(OWNER, "Alice", "test"))
    result = setup_env.run(*ONLY_SKILLS)
    assert result.returncode == 0, result.stdout + result.stderr
    for agent, rel in INSTRUCTION_FILES.items():
        text = (setup_env.home / rel).read_text()
        assert text.startswith(BEGIN) and text.rstrip().endswith(END), agent
        assert "~/projects" in text and "dbx-run" in text
        assert f"acting for\n{OWNER}" in text or f"acting for {OWNER}" in text
        assert f"`/Workspace/Users/{OWNER}`" in text
        # The skills this agent really has, the shipped ones with what they are for.
        assert "`run-on-databricks`: Run heavy Python work" in text, agent
        assert "`coding-agents-environment`" in text
        assert "$" not in text.replace("$CODING", "")  # every template field was filled
    assert (setup_env.home / ".claude/CLAUDE.md").read_text().count("You are Claude Code,") == 1
    assert "You are Codex CLI," in (setup_env.home / ".codex/AGENTS.md").read_text()


def test_the_users_text_is_kept_byte_for_byte_and_reruns_converge(setup_env: SetupEnv) -> None:
    only_shipped_skills(setup_env)
    user_text = "# My rules\r\n\r\nAlways answer in French.\n\n  trailing spaces kept  \n"
    claude_md = setup_env.home / ".claude" / "CLAUDE.md"
    claude_md.parent.mkdir()
    claude_md.write_bytes(user_text.encode())
    claude_md.chmod(0o640)
    assert setup_env.run(*ONLY_SKILLS).returncode == 0
    first = claude_md.read_bytes()
    assert first.endswith(user_text.encode())  # our block in front, theirs untouched
    assert claude_md.stat().st_mode & 0o777 == 0o640
    # A second run with nothing changed leaves the file as it is.
    mtime = claude_md.stat().st_mtime_ns
    assert setup_env.run(*ONLY_SKILLS).returncode == 0
    assert claude_md.read_bytes() == first and claude_md.stat().st_mtime_ns == mtime
    # The user writes around our block; the owner becomes known: only the block changes.
    before, after = b"Top note by the user.\n\n", b"\nBottom note\n"
    claude_md.write_bytes(before + first + after)
    save_owner(setup_env.settings, Owner(OWNER, "Alice", "test"))
    assert setup_env.run(*ONLY_SKILLS).returncode == 0
    final = claude_md.read_bytes()
    assert final.startswith(before) and final.endswith(user_text.encode() + after)
    assert OWNER in ours(final.decode()) and OWNER not in ours(first.decode())
    assert final.count(BEGIN.encode()) == 1


@pytest.mark.parametrize(
    "content",
    [
        f"mine\n{BEGIN}\nhalf a block\n".encode(),
        f"{END}\nmine\n{BEGIN}\n".encode(),
        b"caf\xe9 latin-1 text\n",
    ],
)
def test_a_file_that_cannot_be_merged_is_left_alone_and_named(setup_env: SetupEnv, content: bytes) -> None:
    only_shipped_skills(setup_env)
    agents_md = setup_env.home / ".codex" / "AGENTS.md"
    agents_md.parent.mkdir()
    agents_md.write_bytes(content)
    result = setup_env.run(*ONLY_SKILLS)
    assert result.returncode != 0
    assert agents_md.read_bytes() == content
    failed = next(s for s in setup_env.status().steps if s.id == "skills")
    assert "~/.codex/AGENTS.md" in failed.reason, failed
    # The other agents still got theirs.
    assert BEGIN in (setup_env.home / ".claude/CLAUDE.md").read_text()


def test_merge_rules() -> None:
    block = f"{BEGIN}\nnew\n{END}"
    assert instructions.merge("", block, "f") == block + "\n"
    assert instructions.merge("user", block, "f") == f"{block}\n\nuser"
    assert instructions.merge(f"a\n{BEGIN}\nold\n{END}\nb", block, "f") == f"a\n{block}\nb"
    with pytest.raises(InstructionsError, match="markers are broken"):
        instructions.merge(f"{BEGIN}{END}{BEGIN}{END}", block, "f")


def test_a_symlinked_file_stays_a_symlink(setup_env: SetupEnv, tmp_path: Path) -> None:
    only_shipped_skills(setup_env)
    real = tmp_path / "dotfiles-GEMINI.md"
    real.write_text("from my dotfiles\n")
    link = setup_env.home / ".gemini" / "GEMINI.md"
    link.parent.mkdir()
    link.symlink_to(real)
    assert setup_env.run(*ONLY_SKILLS).returncode == 0
    assert link.is_symlink()
    assert real.read_text().endswith("\n\nfrom my dotfiles\n") and BEGIN in real.read_text()
