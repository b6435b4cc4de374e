"""A clone of this project (a real git repository) whose skills/sources.yaml names a local upstream,
and a runner for `python -m services.deploy` in it, against the fake workspace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT
from tests.conftest import OWNER_TOKEN
from tests.fake_workspace import FakeWorkspace
from tests.helpers import env_for_subprocess

SKILL_TAG = "v1.0.0"


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def skill_md(name: str) -> str:
    return f"---\nname: {name}\ndescription: Use {name} in tests.\n---\n\n# {name}\n\nDo the thing.\n"


@dataclass
class Project:
    root: Path
    upstream: Path  # the skills source: a local git repository with skills/alpha and skills/beta
    home: Path

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def env(self, workspace: FakeWorkspace | None = None, **extra: str) -> dict[str, str]:
        env = env_for_subprocess() | {
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "CODING_AGENTS_DEPLOY_POLL_SECONDS": "0.01",
            # uv where scripts/lib/env.sh puts it when it is not installed.
            "PATH": f"{os.environ.get('PATH', '')}:{PROJECT_ROOT / '.tools' / 'bin'}",
        }
        env.pop("CODING_AGENTS_SKILL_SOURCES", None)
        if workspace is not None:
            env |= {"DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": OWNER_TOKEN}
        return env | extra

    def deploy(
        self, *args: str, workspace: FakeWorkspace | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.deploy", *args],
            cwd=self.root,
            env=self.env(workspace, **extra),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="session")
def project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worktree's files (tracked or not ignored) committed in a new repository."""
    base = tmp_path_factory.mktemp("deploy-template")
    upstream = base / "upstream"
    for name in ("alpha", "beta"):
        (upstream / "skills" / name).mkdir(parents=True)
        (upstream / "skills" / name / "SKILL.md").write_text(skill_md(name))
    git(upstream, "init", "--quiet")
    git(upstream, "add", "-A")
    git(upstream, "commit", "--quiet", "-m", "skills")
    git(upstream, "tag", SKILL_TAG)

    root = base / "project"
    listed = git(PROJECT_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, listed.split("\0")):
        src = PROJECT_ROOT / rel
        if src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    (root / "skills" / "sources.yaml").write_text(
        f"sources:\n  - name: upstream\n    repo: {upstream}\n    ref: {SKILL_TAG}\n    path: skills\n"
    )
    # Ignored, so never staged: what `npm ci` leaves in a clone.
    (root / "web" / "node_modules").symlink_to(PROJECT_ROOT / "web" / "node_modules")
    git(root, "init", "--quiet")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "project")
    return base


@pytest.fixture
def project(project_template: Path, tmp_path: Path) -> Project:
    shutil.copytree(project_template / "project", tmp_path / "project", symlinks=True)
    home = tmp_path / "home"
    home.mkdir()
    return Project(tmp_path / "project", project_template / "upstream", home)
