"""The owner's token in ~/.databrickscfg [DEFAULT], where the terminal's CLI and SDK read it."""

from __future__ import annotations

from pathlib import Path

from services import identity, state
from services.config import Settings

PROFILE = "DEFAULT"


def profile_path(settings: Settings) -> Path:
    return settings.home / ".databrickscfg"


def write_profile(settings: Settings, token: str) -> None:
    """[DEFAULT] acts as the owner: written whole to a temporary file and renamed (0600)."""
    identity.write_databrickscfg(profile_path(settings), settings.databricks_host, token)


def drop_profile_token(settings: Settings) -> None:
    """Remove the token from [DEFAULT] (it expired or was refused); everything else stays."""
    path = profile_path(settings)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return
    kept, section = [], ""
    for line in text.splitlines():
        if match := identity.SECTION.match(line):
            section = match.group(1)
        key = identity.KEY.match(line)
        if section == PROFILE and key is not None and key.group(1) == "token":
            continue
        kept.append(line)
    state.atomic_write_bytes(path, ("\n".join(kept) + "\n").encode())
