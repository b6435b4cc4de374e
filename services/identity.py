"""The owner's workspace identity in the shells: git author and the Databricks CLI/SDK profile.

Both are merged into what the user already has: other git settings, other profiles and comments in
~/.databrickscfg are kept byte for byte.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

from services import databricks, state
from services.config import Settings
from services.databricks import Owner

log = logging.getLogger("identity")

SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
KEY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*[=:]")


def merge_ini_section(text: str, section: str, values: dict[str, str]) -> str:
    """`text` with `values` set in `[section]`; every other line kept as it was."""
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if (m := SECTION.match(line)) and m.group(1) == section), None
    )
    if start is None:
        block = "\n".join([f"[{section}]", *(f"{k} = {v}" for k, v in values.items())]) + "\n"
        return block + ("\n" + text.rstrip("\n") + "\n" if text.strip() else "")
    end = next((i for i in range(start + 1, len(lines)) if SECTION.match(lines[i])), len(lines))
    remaining = dict(values)
    body = []
    for line in lines[start + 1 : end]:
        key_match = KEY.match(line)
        key = key_match.group(1) if key_match else None
        if key in remaining:
            body.append(f"{key} = {remaining.pop(key)}")
        elif key is not None and key in values:
            continue  # a duplicate of a key already rewritten above
        else:
            body.append(line)
    # New keys go right after the last non-blank line of the section, before any spacing.
    last = max((i for i, line in enumerate(body) if line.strip()), default=-1)
    body[last + 1 : last + 1] = [f"{k} = {v}" for k, v in remaining.items()]
    return "\n".join([*lines[: start + 1], *body, *lines[end:]]) + "\n"


def write_databrickscfg(path: Path, host: str, token: str) -> None:
    """Point the [DEFAULT] profile at this workspace as the owner (0600: it holds the PAT)."""
    try:
        current = path.read_text()
    except FileNotFoundError:
        current = ""
    state.atomic_write_bytes(
        path, merge_ini_section(current, "DEFAULT", {"host": host, "token": token}).encode()
    )


def git_identity(home: Path, name: str, email: str) -> None:
    git = shutil.which("git")
    if git is None:
        log.warning("git not found: commits in the terminal will have no author until it is installed")
        return
    config = home / ".gitconfig"
    for key, value in (("user.name", name), ("user.email", email)):
        subprocess.run(
            [git, "config", "--file", str(config), key, value], check=True, capture_output=True, timeout=10
        )


def git_email(home: Path) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    result = subprocess.run(
        [git, "config", "--file", str(home / ".gitconfig"), "user.email"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout.strip()


def apply(settings: Settings, owner: Owner) -> None:
    """Make shells act as the owner: git author always, the CLI profile when there is a PAT."""
    # The creator's record carries no display name: keep the one a connected token's SCIM gave.
    if owner.source != databricks.CREATOR_SOURCE or git_email(settings.home).lower() != owner.key:
        git_identity(settings.home, owner.display_name, owner.email)
    if settings.has_workspace:
        write_databrickscfg(
            settings.home / ".databrickscfg", settings.databricks_host, settings.databricks_token
        )
    log.info("workspace identity set for %s", owner.email)
