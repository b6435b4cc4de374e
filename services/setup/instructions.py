"""The instructions every agent reads: one template (instructions.md next to this file) rendered into
each agent's global instruction file, between marker lines.

Only the text between `<!-- coding-agents:begin -->` and `<!-- coding-agents:end -->` is ours: it is
replaced on every run, and everything outside it — the user's own instructions — is kept byte for
byte. A file without the markers gets our block put in front of its text; a file whose markers are
broken, or that is not UTF-8 text, is left alone and the step fails naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

from services import skills, state
from services.config import Settings
from services.setup import registry
from services.setup.registry import Agent

TEMPLATE = Path(__file__).with_name("instructions.md")
BEGIN = "<!-- coding-agents:begin -->"
END = "<!-- coding-agents:end -->"
# Each CLI's documented global instruction file, relative to HOME.
INSTRUCTION_FILES: dict[str, str] = {
    "claude": ".claude/CLAUDE.md",  # Claude Code: user memory
    "codex": ".codex/AGENTS.md",  # Codex CLI: $CODEX_HOME/AGENTS.md, CODEX_HOME defaulting to ~/.codex
    "gemini": ".gemini/GEMINI.md",  # Gemini CLI: global context file (context.fileName GEMINI.md)
    "opencode": ".config/opencode/AGENTS.md",  # OpenCode: global rules
}
FILE_MODE = 0o644  # instructions hold no secret; the agents and the user read them


class InstructionsError(Exception):
    """A file cannot be merged without clobbering the user's text; the message says which and why."""


@dataclass(frozen=True)
class Facts:
    """What the template says about this installation."""

    owner: str  # e-mail, or a phrase when not known yet
    workspace_home: str
    sync: str
    auth: str


def facts(settings: Settings) -> Facts:
    email = settings.owner_override
    if not email:
        from services.databricks import load_owner  # light: no databricks-sdk import

        known = load_owner(settings)
        email = known.email if known else ""
    who = email or "the app's owner"
    home = f"/Workspace/Users/{email or '<you>'}"
    if settings.has_workspace:
        sync = (
            f"Commits sync to the workspace: the committed, tracked files of each repository's HEAD are "
            f"mirrored to `{home}/projects/<repo>` (with a git bundle of its history), and restored from "
            "there after a restart. Untracked files, uncommitted changes and `.git` never leave here."
        )
    else:
        sync = "No Databricks workspace is configured here, so nothing is synced: the local disk is all."
    if settings.apps_mode:
        sync += (
            " Everything else (files outside `~/projects`, uncommitted work) is lost when the app "
            "restarts or is redeployed: commit often."
        )
    auth = (
        "the `DEFAULT` profile of `~/.databrickscfg`, with `DATABRICKS_HOST` set"
        if settings.apps_mode
        else "`DATABRICKS_HOST` and `DATABRICKS_TOKEN` in the environment, or your `~/.databrickscfg`"
    )
    return Facts(who, home, sync, auth)


def installed_skills(home: Path, skill_dirs: Sequence[str]) -> list[skills.Skill]:
    """The valid skills in the folders an agent reads, by name (a name in two folders once)."""
    found: dict[str, skills.Skill] = {}
    for rel in skill_dirs:
        root = home / rel
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.name in found or not (folder / "SKILL.md").is_file():
                continue
            try:
                found[folder.name] = skills.read_skill(folder)
            except (skills.SkillError, OSError):
                continue  # the skills step reports broken skills; here they are just not listed
    return [found[name] for name in sorted(found)]


def skills_text(home: Path, skill_dirs: Sequence[str], shipped: set[str]) -> str:
    present = installed_skills(home, skill_dirs)
    folders = ", ".join(f"`~/{rel}`" for rel in skill_dirs)
    if not present:
        return f"No skills are installed yet (they go to {folders}; `refresh-skills` installs them)."
    ours = [s for s in present if s.name in shipped]
    others = [s.name for s in present if s.name not in shipped]
    lines = [f"Installed in {folders} ({len(present)}); read a skill's SKILL.md when its topic comes up:", ""]
    lines += [f"- `{s.name}`: {first_sentence(s.description)}" for s in ours]
    if others:
        lines.append(f"- also: {', '.join(f'`{name}`' for name in others)}")
    lines += ["", "`refresh-skills` reinstalls them after a change."]
    return "\n".join(lines)


def first_sentence(text: str) -> str:
    head, dot, _ = " ".join(text.split()).partition(". ")
    return head + ("." if dot or not head.endswith(".") else "")


def render(agent: Agent, settings: Settings, template: str | None = None) -> str:
    """Our block for one agent, markers included."""
    shipped, _ = skills.shipped_skills()
    known = facts(settings)
    body = Template(TEMPLATE.read_text() if template is None else template).substitute(
        agent=agent.title,
        owner=known.owner,
        workspace_home=known.workspace_home,
        sync=known.sync,
        auth=known.auth,
        skills=skills_text(settings.home, agent.skill_dirs, set(shipped)),
    )
    return f"{BEGIN}\n{body.strip()}\n{END}"


def merge(existing: str, block: str, where: str) -> str:
    """`existing` with our block replaced (or put in front); the rest untouched."""
    begins, ends = existing.count(BEGIN), existing.count(END)
    if begins == ends == 0:
        return block + "\n" if not existing else f"{block}\n\n{existing}"
    start, stop = existing.find(BEGIN), existing.find(END)
    if begins != 1 or ends != 1 or stop < start:
        raise InstructionsError(
            f"{where}: the coding-agents markers are broken ({begins} begin, {ends} end); "
            f"remove the lines {BEGIN} and {END} and what is between them, then run setup again"
        )
    return existing[:start] + block + existing[stop + len(END) :]


def write(path: Path, block: str, display: str) -> bool:
    """Merge the block into the file at path; True when the file changed."""
    try:
        raw = path.read_bytes() if path.exists() else b""
    except OSError as exc:
        raise InstructionsError(f"{display}: cannot read it ({exc.strerror})") from None
    try:
        existing = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InstructionsError(f"{display}: not UTF-8 text; left as it is") from None
    merged = merge(existing, block, display)
    if merged == existing:
        return False
    target = Path(os.path.realpath(path))  # a symlinked file (dotfiles repo) stays a symlink
    mode = target.stat().st_mode & 0o777 if target.exists() else FILE_MODE
    try:
        state.atomic_write_bytes(target, merged.encode("utf-8"), mode=mode)
    except OSError as exc:
        raise InstructionsError(f"{display}: cannot write it ({exc.strerror})") from None
    return True


def write_all(
    settings: Settings, log: Callable[[str], None], agents: Sequence[Agent] | None = None
) -> list[str]:
    """Render and merge for every agent (agents.yaml's by default); returns the problems, each
    already logged."""
    if agents is None:
        try:
            agents = registry.load(registry.registry_path(os.environ)).agents
        except registry.RegistryError as exc:
            log(f"instructions: FAILED: {exc}")
            return [str(exc)]
    problems: list[str] = []
    for agent in agents:
        rel = INSTRUCTION_FILES.get(agent.id)
        if rel is None:
            continue
        display = f"~/{rel}"
        try:
            changed = write(settings.home / rel, render(agent, settings), display)
        except InstructionsError as exc:
            problems.append(str(exc))
            log(f"instructions: FAILED: {exc}")
            continue
        log(f"instructions: {display} {'written' if changed else 'unchanged'}")
    return problems
