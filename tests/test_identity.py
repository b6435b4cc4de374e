"""Git identity and ~/.databrickscfg are merged into what the user has, never clobbered."""

from __future__ import annotations

import configparser
import stat
import subprocess
from pathlib import Path

import pytest

from services import identity
from services.config import Settings
from services.databricks import Owner
from services.identity import merge_ini_section

NEW = {"host": "https://w.example.com", "token": "dapi-new"}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", "[DEFAULT]\nhost = https://w.example.com\ntoken = dapi-new\n"),
        (
            "[other]\nhost = https://o\n",
            "[DEFAULT]\nhost = https://w.example.com\ntoken = dapi-new\n\n[other]\nhost = https://o\n",
        ),
        (
            "; mine\n[DEFAULT]\nhost=https://old\ncluster_id = c1\n\n[other]\ntoken = keep\n",
            "; mine\n[DEFAULT]\nhost = https://w.example.com\ncluster_id = c1\ntoken = dapi-new\n\n"
            "[other]\ntoken = keep\n",
        ),
        (
            "[DEFAULT]\ntoken = a\ntoken = b\nhost = h\n",
            "[DEFAULT]\ntoken = dapi-new\nhost = https://w.example.com\n",
        ),
    ],
    ids=[
        "empty file",
        "other profile only",
        "keys replaced, comments and others kept",
        "duplicates collapse",
    ],
)
def test_merge_ini_section(before: str, after: str) -> None:
    assert merge_ini_section(before, "DEFAULT", NEW) == after


def test_apply_keeps_a_second_profile_and_a_git_alias(tmp_path: Path) -> None:
    cfg = tmp_path / ".databrickscfg"
    cfg.write_text("[staging]\nhost = https://staging.example.com\ntoken = dapi-staging\n")
    cfg.chmod(0o644)
    subprocess.run(
        ["git", "config", "--file", str(tmp_path / ".gitconfig"), "alias.st", "status"], check=True
    )
    settings = Settings.from_env(
        {"HOME": str(tmp_path), "DATABRICKS_HOST": "w.example.com", "DATABRICKS_TOKEN": "dapi-owner"}
    )
    identity.apply(settings, Owner("alice@example.com", "Alice Example", "DATABRICKS_TOKEN"))
    parsed = configparser.RawConfigParser()
    parsed.read(cfg)
    assert parsed.defaults() == {"host": "https://w.example.com", "token": "dapi-owner"}
    assert parsed.get("staging", "token") == "dapi-staging"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600

    def git(key: str) -> str:
        out = subprocess.run(
            ["git", "config", "--file", str(tmp_path / ".gitconfig"), key], capture_output=True, text=True
        )
        return out.stdout.strip()

    assert (git("user.name"), git("user.email"), git("alias.st")) == (
        "Alice Example",
        "alice@example.com",
        "status",
    )


def test_without_a_token_only_git_is_set(tmp_path: Path) -> None:
    settings = Settings.from_env({"HOME": str(tmp_path), "CODING_AGENTS_OWNER": "bob@example.com"})
    identity.apply(settings, Owner("bob@example.com", "bob", "CODING_AGENTS_OWNER"))
    assert not (tmp_path / ".databrickscfg").exists()
    assert "bob@example.com" in (tmp_path / ".gitconfig").read_text()
