"""services/version.py: which build is running, from a deploy's VERSION, a checkout's git, or neither."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from services.config import PROJECT_ROOT
from services.version import describe, package_version


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    shutil.copyfile(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_a_copy_without_git_says_the_package_version(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    assert describe(root) == package_version(PROJECT_ROOT) != "unknown"


def test_a_checkout_adds_its_commit_and_says_when_it_is_edited(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    head = git(root, "rev-parse", "--short=12", "HEAD")
    assert describe(root) == f"{package_version(root)}+{head}"
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n# edited\n")
    assert describe(root) == f"{package_version(root)}+{head}-dirty"
    git(root, "tag", "v9.9.9")
    assert describe(root).startswith(f"{package_version(root)}+v9.9.9")


def test_the_deploys_version_file_wins(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    (root / "VERSION").write_text("0.1.0+abcdef012345\n")
    assert describe(root) == "0.1.0+abcdef012345"
    (root / "pyproject.toml").unlink()
    (root / "VERSION").unlink()
    assert describe(root) == "unknown"
