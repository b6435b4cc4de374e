"""The app's version: which build is running, for /health, the page's key list and the start log.

A deploy has no .git (Databricks Apps gets a copy), so `scripts/deploy` writes VERSION_FILE into
the deploy set from `git describe`; a checkout asks git; failing both, pyproject's version alone.
"""

from __future__ import annotations

import functools
import subprocess
import tomllib
from pathlib import Path

from services.config import PROJECT_ROOT

VERSION_FILE = "VERSION"
GIT_TIMEOUT = 5.0


def package_version(root: Path) -> str:
    try:
        return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, ValueError):
        return "unknown"


def git_describe(root: Path) -> str | None:
    """`git describe` of a checkout (a short commit hash when there are no tags; `-dirty` if edited)."""
    if not (root / ".git").exists():
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "describe", "--tags", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    described = result.stdout.strip()
    return described if result.returncode == 0 and described else None


def describe(root: Path) -> str:
    """`0.1.0+03cdaa1e2f4b` (package version + git), as written at deploy or read from git now."""
    try:
        written = (root / VERSION_FILE).read_text().strip()
    except OSError:
        written = ""
    if written:
        return written[:100]
    described = git_describe(root)
    version = package_version(root)
    return f"{version}+{described}" if described else version


@functools.cache
def app_version() -> str:
    return describe(PROJECT_ROOT)
