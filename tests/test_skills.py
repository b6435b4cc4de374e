"""services.skills: the shipped skills are valid, sources are pinned, and a refresh from a real local git
repository (the upstream) installs into every agent folder without ever touching the user's own skills."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from services import skills
from services.config import PROJECT_ROOT, Settings
from services.skills import (
    COMMIT_SHA,
    DEFAULT_SOURCES,
    RELEASE_TAG,
    SHIPPED_DIR,
    SkillError,
    SkillsReport,
    SourcesError,
    install_skills,
    load_sources,
    read_skill,
    shipped_skills,
)
from services.tmuxd.__main__ import write_refresh_skills_wrapper
from tests.helpers import env_for_subprocess

REQUIRED_SHIPPED = {
    "coding-agents-environment",
    "databricks-cli-and-sdk",
    "deploy-databricks-app",
    "refresh-skills",
    "run-on-databricks",
}
AGENT_DIRS = (".claude/skills", ".agents/skills")


def skill_md(name: str, description: str = "Use it in tests.", body: str = "Do the thing.") -> str:
    return f"---\nname: {name}\ndescription: {description}\n---\n\n# {name}\n\n{body}\n"


class Upstream:
    """A real git repository standing in for an upstream skill collection."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.git("init", "--quiet")

    def git(self, *args: str) -> str:
        out = subprocess.run(
            ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")


@dataclass
class Env:
    root: Path
    home: Path
    state_dir: Path
    upstream: Upstream
    sources: Path
    logs: list[str]

    def point_at(self, ref: str, repo: str | None = None, **extra: str) -> None:
        lines = [
            "sources:",
            "  - name: upstream",
            f"    repo: {repo or self.upstream.root}",
            f"    ref: {ref}",
            "    path: skills",
        ]
        lines += [f"    {k}: {v}" for k, v in extra.items()]
        self.sources.write_text("\n".join(lines) + "\n")

    def refresh(self) -> SkillsReport:
        return install_skills(self.home, self.state_dir, self.sources, self.logs.append)

    def installed(self, rel: str) -> set[str]:
        folder = self.home / rel
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = env_for_subprocess() | {
            "HOME": str(self.home),
            "CODING_AGENTS_STATE_DIR": str(self.state_dir),
            "CODING_AGENTS_SKILL_SOURCES": str(self.sources),
        }
        return subprocess.run(
            [sys.executable, "-m", "services.setup.refresh_skills", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def env(tmp_path: Path) -> Env:
    home, state_dir = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    upstream = Upstream(tmp_path / "upstream")
    upstream.write("skills/alpha/SKILL.md", skill_md("alpha", body="Alpha v1."))
    upstream.write("skills/alpha/scripts/run.sh", "#!/bin/sh\necho alpha\n")
    (upstream.root / "skills/alpha/scripts/run.sh").chmod(0o755)
    upstream.write("skills/beta/SKILL.md", skill_md("beta"))
    upstream.write("skills/notes/README.md", "Not a skill: no SKILL.md.\n")
    return Env(tmp_path, home, state_dir, upstream, tmp_path / "sources.yaml", [])


# --- what ships ----------------------------------------------------------------------------------


def test_every_shipped_skill_is_valid_and_the_required_ones_exist() -> None:
    found, problems = shipped_skills(SHIPPED_DIR)
    assert problems == []
    assert set(found) >= REQUIRED_SHIPPED
    folders = {p.name for p in SHIPPED_DIR.iterdir() if p.is_dir()}
    assert folders == set(found), "every folder in skills/ must be a valid skill"
    for name, folder in found.items():
        skill = read_skill(folder)
        assert skill.name == name == folder.name
        assert skill.description and len(skill.description) <= skills.MAX_DESCRIPTION
        assert len(skill.body.splitlines()) > 5, f"{name}: the body is too thin to help anyone"
        # Shipped skills describe this machine; none may carry a path of the machine they were written on.
        text = (folder / "SKILL.md").read_text()
        assert str(PROJECT_ROOT) not in text


def test_sources_file_is_valid_and_every_ref_is_pinned() -> None:
    sources = load_sources(DEFAULT_SOURCES)
    by_name = {s.name: s for s in sources}
    assert {"databricks-agent-skills", "superpowers"} <= set(by_name)
    assert "databricks/databricks-agent-skills" in by_name["databricks-agent-skills"].repo
    assert "obra/superpowers" in by_name["superpowers"].repo
    for source in sources:
        assert source.repo.startswith("https://github.com/")
        assert COMMIT_SHA.fullmatch(source.ref) or RELEASE_TAG.fullmatch(source.ref), source
        assert source.path and not source.path.startswith("/")


def test_a_broken_sources_file_names_the_file_and_every_broken_entry(tmp_path: Path) -> None:
    bad = tmp_path / "sources.yaml"
    bad.write_text(
        "sources:\n"
        "  - name: floating\n    repo: https://github.com/o/r\n    ref: main\n    path: skills\n"
        "  - name: plain-http\n    repo: http://example.com/r.git\n    ref: v1.2.3\n    path: ../up\n"
        "  - name: floating\n    repo: https://github.com/o/r\n    ref: 0123abc\n    path: x\n"
        "    colour: red\n"
        "  - repo: https://github.com/o/r\n    ref: v1.0.0\n    path: s\n    include: alpha\n"
        "extra: 1\n"
    )
    with pytest.raises(SourcesError) as caught:
        load_sources(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad}: invalid skill sources:")
    for expected in (
        "top level: unknown key 'extra'",
        "sources[0] (floating): unpinned ref 'main'",
        "sources[1] (plain-http): 'repo' 'http://example.com/r.git' must be an https:// URL",
        "sources[1] (plain-http): 'path' '../up' must be relative",
        "sources[2] (floating): name 'floating' is already used",
        "sources[2] (floating): unknown key 'colour'",
        "sources[2] (floating): unpinned ref '0123abc'",
        "sources[3]: missing field 'name'",
        "sources[3]: 'include' must be a list",
    ):
        assert expected in message, (expected, message)
    assert len(caught.value.problems) == 9


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no front matter\n", "must start with YAML front matter"),
        ("---\nname: other\ndescription: d\n---\nbody\n", "does not match its folder"),
        ("---\nname: thing\n---\nbody\n", "no 'description'"),
        ("---\nname: Thing\ndescription: d\n---\nbody\n", "lower-case"),
        ("---\nname: thing\ndescription: d\n---\n\n", "no instructions"),
        ("---\nname: [thing\n---\nbody\n", "not valid YAML"),
    ],
)
def test_invalid_skill_files_say_why(tmp_path: Path, text: str, reason: str) -> None:
    folder = tmp_path / "thing"
    folder.mkdir()
    (folder / "SKILL.md").write_text(text)
    with pytest.raises(SkillError, match=reason):
        read_skill(folder)


# --- refresh from a local upstream ---------------------------------------------------------------


def test_refresh_installs_shipped_and_upstream_skills_into_every_agent_folder(env: Env) -> None:
    sha = env.upstream.commit("two skills")
    env.point_at(sha)
    report = env.refresh()
    assert report.failures == [] and report.shipped_ok
    (source,) = report.sources
    assert source.commit == sha and source.fetched and source.skills == ["alpha", "beta"]
    for rel in AGENT_DIRS:
        assert env.installed(rel) == REQUIRED_SHIPPED | {"alpha", "beta"}, rel
        alpha = env.home / rel / "alpha"
        assert (alpha / "SKILL.md").read_text() == skill_md("alpha", body="Alpha v1.")
        assert os.access(alpha / "scripts" / "run.sh", os.X_OK)
        assert not (alpha / "SKILL.md").is_symlink()  # copies: agents need not follow links
    agents = {t.path.parent.name: t.agents for t in report.targets}
    assert agents == {".claude": ("claude",), ".agents": ("codex", "gemini", "opencode")}
    manifest = json.loads((env.state_dir / "skills" / "installed.json").read_text())
    claude = manifest["targets"][str((env.home / ".claude/skills").resolve())]
    assert claude["alpha"]["source"] == "upstream" and claude["alpha"]["commit"] == sha
    assert claude["refresh-skills"]["source"] == skills.SHIPPED


def test_user_skills_survive_and_a_skill_removed_upstream_is_removed(env: Env) -> None:
    env.point_at(env.upstream.commit("two skills"))
    mine = env.home / ".claude/skills/mine"
    mine.mkdir(parents=True)
    (mine / "SKILL.md").write_text(skill_md("mine"))
    # A user's own folder that happens to share an upstream name wins over the upstream skill.
    (env.home / ".agents/skills/beta").mkdir(parents=True)
    (env.home / ".agents/skills/beta/SKILL.md").write_text(skill_md("beta", body="Mine, not upstream's."))
    first = env.refresh()
    assert "beta" in first.targets[1].kept_own

    (env.upstream.root / "skills/beta/SKILL.md").unlink()
    env.upstream.write("skills/alpha/SKILL.md", skill_md("alpha", body="Alpha v2."))
    env.point_at(env.upstream.commit("drop beta, change alpha"))
    report = env.refresh()

    claude, agents = report.targets
    assert claude.removed == ["beta"] and claude.updated == ["alpha"]
    assert env.installed(".claude/skills") == REQUIRED_SHIPPED | {"alpha", "mine"}
    assert (mine / "SKILL.md").read_text() == skill_md("mine")
    assert "Alpha v2." in (env.home / ".claude/skills/alpha/SKILL.md").read_text()
    # The user's own beta in ~/.agents/skills was never ours, so it is not removed either.
    assert (
        agents.removed == []
        and "Mine, not upstream's." in (env.home / ".agents/skills/beta/SKILL.md").read_text()
    )
    assert not list((env.home / ".claude/skills").glob(".*")), "no temp folders left behind"


def test_an_installed_skill_the_user_edited_becomes_theirs(env: Env) -> None:
    env.point_at(env.upstream.commit("two skills"))
    env.refresh()
    edited = env.home / ".claude/skills/alpha/SKILL.md"
    edited.write_text(skill_md("alpha", body="My notes on alpha."))
    (env.upstream.root / "skills/alpha").rename(env.upstream.root / "skills/gone")
    env.point_at(env.upstream.commit("alpha leaves upstream"))
    report = env.refresh()
    assert report.targets[0].kept_edited == ["alpha"]
    assert "My notes on alpha." in edited.read_text()
    assert "alpha" not in env.installed(".agents/skills")  # unedited copy: removed as upstream said


def test_identical_skills_are_adopted_when_the_manifest_is_lost(env: Env) -> None:
    env.point_at(env.upstream.commit("two skills"))
    env.refresh()
    (env.state_dir / "skills/installed.json").unlink()
    report = env.refresh()
    for target in report.targets:
        assert target.kept_own == [] and target.installed == []
        assert set(target.unchanged) == REQUIRED_SHIPPED | {"alpha", "beta"}
    # Adopted means managed again: a skill dropped upstream is removed as usual.
    (env.upstream.root / "skills/beta/SKILL.md").unlink()
    env.point_at(env.upstream.commit("drop beta"))
    assert all(t.removed == ["beta"] for t in env.refresh().targets)


def test_unreachable_source_is_reported_and_shipped_skills_still_install(env: Env) -> None:
    env.point_at("v1.0.0", repo=str(env.root / "no-such-repo"))
    result = env.run_cli("refresh")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "source upstream @ v1.0.0: FAILED: git fetch failed" in result.stdout
    assert "does not appear to be a git repository" in result.stdout
    assert "1 problem(s)" in result.stderr
    for rel in AGENT_DIRS:
        assert env.installed(rel) == REQUIRED_SHIPPED


def test_a_failed_fetch_keeps_what_the_source_installed_before(env: Env) -> None:
    env.point_at(env.upstream.commit("two skills"))
    env.refresh()
    env.point_at("f" * 40)  # a commit the upstream does not have
    report = env.refresh()
    assert report.failures and report.shipped_ok
    assert "upstream: git fetch failed" in report.failures[0]
    for rel in AGENT_DIRS:
        assert {"alpha", "beta"} <= env.installed(rel)


def test_a_second_refresh_at_the_same_ref_does_not_touch_the_network(env: Env) -> None:
    env.point_at(env.upstream.commit("two skills"))
    first = env.refresh()
    marker = env.state_dir / "skills/cache/upstream.json"
    stamp = marker.stat().st_mtime_ns
    # Gone upstream: only the cache can answer now.
    env.upstream.root.rename(env.root / "moved-away")
    logged = len(env.logs)
    second = env.refresh()
    assert first.sources[0].fetched and not second.sources[0].fetched
    assert second.failures == [] and marker.stat().st_mtime_ns == stamp
    assert not any("fetching" in line for line in env.logs[logged:])
    assert all(not t.installed and not t.updated and not t.removed for t in second.targets)


def test_shipped_skills_win_name_clashes_and_invalid_upstream_skills_are_skipped(env: Env) -> None:
    env.upstream.write("skills/refresh-skills/SKILL.md", skill_md("refresh-skills", body="Impostor."))
    env.upstream.write("skills/broken/SKILL.md", skill_md("not-broken"))
    env.point_at(env.upstream.commit("clash"), exclude="[beta]")
    report = env.refresh()
    skipped = dict(report.sources[0].skipped)
    assert skipped["refresh-skills"] == "name taken by this product's own skill"
    assert "does not match its folder" in skipped["broken"]
    assert report.sources[0].skills == ["alpha"]
    installed = (env.home / ".claude/skills/refresh-skills/SKILL.md").read_text()
    assert installed == (SHIPPED_DIR / "refresh-skills/SKILL.md").read_text()


def test_a_symlinked_skills_folder_is_installed_once(env: Env) -> None:
    env.point_at(env.upstream.commit("two skills"))
    (env.home / ".agents/skills").mkdir(parents=True)
    (env.home / ".claude").mkdir()
    (env.home / ".claude/skills").symlink_to(env.home / ".agents/skills")
    report = env.refresh()
    (target,) = report.targets
    assert set(target.agents) == {"claude", "codex", "gemini", "opencode"}
    assert report.failures == []
    assert env.installed(".agents/skills") == REQUIRED_SHIPPED | {"alpha", "beta"}


def test_shipped_skills_that_cannot_be_installed_exit_1(env: Env) -> None:
    env.point_at(env.upstream.commit("two skills"))
    (env.home / ".claude").write_text("a file where a folder should be")
    result = env.run_cli()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "~/.claude/skills (Claude Code): FAILED: cannot write skills" in result.stdout
    assert "could not be installed" in result.stderr
    assert env.installed(".agents/skills") == REQUIRED_SHIPPED | {"alpha", "beta"}


def test_check_validates_without_fetching(env: Env) -> None:
    env.point_at("main")
    result = env.run_cli("check")
    assert result.returncode == 1
    assert "unpinned ref 'main'" in result.stderr and "shipped skills ok" in result.stdout
    assert not (env.state_dir / "skills").exists()


# --- the refresh-skills command in the terminal ----------------------------------------------------


def test_refresh_skills_wrapper_runs_the_refresh_from_any_folder(env: Env) -> None:
    env.point_at(env.upstream.commit("two skills"))
    settings = Settings.from_env({"HOME": str(env.home), "CODING_AGENTS_STATE_DIR": str(env.state_dir)})
    write_refresh_skills_wrapper(settings)
    wrapper = settings.state_bin / "refresh-skills"
    assert os.access(wrapper, os.X_OK)
    # A user's project with its own `services` package must not shadow the app's.
    project = env.home / "projects/app"
    (project / "services").mkdir(parents=True)
    (project / "services/__init__.py").write_text("raise SystemExit('wrong services package')\n")
    result = subprocess.run(
        [str(wrapper)],
        cwd=project,
        env=env_for_subprocess()
        | {
            "HOME": str(env.home),
            "CODING_AGENTS_SKILL_SOURCES": str(env.sources),
            "PATH": os.environ["PATH"],
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "source upstream @" in result.stdout and "fetched" in result.stdout
    assert env.installed(".claude/skills") == REQUIRED_SHIPPED | {"alpha", "beta"}
    # The agents' instructions list what is installed now.
    assert "also: `alpha`, `beta`" in (env.home / ".claude/CLAUDE.md").read_text()
