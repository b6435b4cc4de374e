"""The environment every shell starts with, shared by the tmux server and session creators."""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path

from services import github
from services.config import Settings
from services.memory import MemoryProbe, node_heap_mb

# Never leak into shells: a nested TMUX confuses tmux; the app's own OAuth client would make the
# Databricks CLI in the terminal act as the app instead of its owner; the local token opens the
# terminal itself (an agent holding it could hand it on).
SCRUBBED = (
    "TMUX",
    "TMUX_PANE",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "CODING_AGENTS_TOKEN",
    "DATABRICKS_TOKEN",  # added back for shells only, by shell_secrets (never in a program's environ)
    "SUPERVISOR_ENABLED",
    "SUPERVISOR_PROCESS_NAME",
    "SUPERVISOR_GROUP_NAME",
    "SUPERVISOR_SERVER_URL",
)


def shell_path(settings: Settings, base: Mapping[str, str]) -> str:
    """Helpers and user-installed agents first, then the inherited PATH.

    Not the app's venv: `python` in the terminal should be the user's, not the gateway's.
    """
    path = [str(settings.state_bin), str(settings.local_bin)]
    path += [p for p in base.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":") if p and p not in path]
    return ":".join(path)


# On Databricks Apps the owner's PAT lives in ~/.databrickscfg (0600), not in every process's
# environment; with the token gone the CLI and SDK must be told to read that profile.
APPS_SCRUBBED = ("DATABRICKS_AUTH_TYPE", "DATABRICKS_CONFIG_FILE")


def shell_environment(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    scrubbed = SCRUBBED + APPS_SCRUBBED if settings.apps_mode else SCRUBBED
    env = {k: v for k, v in base.items() if k not in scrubbed}
    env["PATH"] = shell_path(settings, base)
    env["HOME"] = str(settings.home)
    env["CODING_AGENTS_STATE_DIR"] = str(settings.state_dir)
    env.setdefault("SHELL", "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh")
    env.setdefault("LANG", "C.UTF-8")
    # xterm.js renders 24-bit colour; tools (Gemini CLI, bat, delta) only use it when told so.
    env["COLORTERM"] = "truecolor"
    # OpenCode reads skills from ~/.claude/skills and ~/.agents/skills, where setup puts the same
    # skills for Claude Code and for Codex/Gemini: every one would be a duplicate name. It keeps
    # ~/.agents/skills (agents.yaml skill_dirs).
    env.setdefault("OPENCODE_DISABLE_CLAUDE_CODE_SKILLS", "1")
    # No browser on this machine: `gh auth login --web` and `gh browse` print the link (services/github.py).
    env.setdefault("GH_BROWSER", str(github.open_url_path(settings)))
    # Databricks Apps sets neither; tools (git, ssh, npm, agents' prompts) read them.
    user = base.get("USER", "").strip() or login_name()
    env["USER"] = env["LOGNAME"] = user
    env.update(node_heap_cap(settings, base))
    if settings.databricks_host:
        env["DATABRICKS_HOST"] = settings.databricks_host
        if settings.apps_mode:
            # The SDK skips ~/.databrickscfg when DATABRICKS_HOST is set unless a profile is named.
            env.setdefault("DATABRICKS_CONFIG_PROFILE", "DEFAULT")
    return env


HEAP_FLAG = "--max-old-space-size"


def node_heap_cap(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """NODE_OPTIONS with a heap cap sized from the container's limit (services.memory), for the
    Node-based agents; {} without a limit or with CODING_AGENTS_NODE_HEAP_MB=off. A cap already in
    the user's own NODE_OPTIONS is kept as it is.

    Gemini CLI relaunches itself with a cap of half the *host's* RAM, which beats NODE_OPTIONS on
    its command line; GEMINI_CLI_NO_RELAUNCH keeps it in one process under our cap.
    """
    options = base.get("NODE_OPTIONS", "").strip()
    if HEAP_FLAG in options:
        return {"NODE_OPTIONS": options, "GEMINI_CLI_NO_RELAUNCH": base.get("GEMINI_CLI_NO_RELAUNCH", "true")}
    heap = settings.limits.node_heap_mb
    if heap is None:
        limit = MemoryProbe(settings.limits.memory_root).limit_bytes()
        heap = node_heap_mb(limit) if limit is not None else 0
    if not heap:
        return {}
    return {
        "NODE_OPTIONS": f"{options} {HEAP_FLAG}={heap}".strip(),
        "GEMINI_CLI_NO_RELAUNCH": base.get("GEMINI_CLI_NO_RELAUNCH", "true"),
    }


def shell_secrets(settings: Settings) -> dict[str, str]:
    """Credentials a shell gets although no program holds them in its environment: on a laptop, the
    PAT the user gave scripts/run (theirs, as in their own shells). On Apps the owner's PAT reaches
    shells only through ~/.databrickscfg. Callers put these into the shells' environment only (tmux's
    global environment, a degraded shell's exec), never into their own."""
    if settings.apps_mode or not settings.databricks_token:
        return {}
    return {"DATABRICKS_TOKEN": settings.databricks_token}


def login_name() -> str:
    """This process's user name; "app" for a uid without a passwd entry (containers often have none)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "app"
