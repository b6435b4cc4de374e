"""GitHub from the browser terminal: the shells' `open-url` (GH_BROWSER) and `gh-login` commands, and
git's credentials for github.com through gh (setup step "gh-git").

There is no browser on the app's machine: `gh auth login --web` would fail to open one. `open-url`
prints the link instead, which the page's terminal makes clickable, and the device code gh shows
is typed on that page.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from services import state
from services.config import Settings

# gh's own `auth setup-git` configures these two; gists are git repositories too.
HOSTS = ("github.com", "gist.github.com")
GIT_TIMEOUT_SECONDS = 20.0
LOCK_WAIT_SECONDS = 30.0
LOCK_RETRY_SECONDS = 0.2


def _quiet(line: str) -> None:
    """No log: the default for git calls whose waiting nobody needs to see."""


class CredentialError(RuntimeError):
    """git could not be configured; the message is one line for the setup panel."""


def open_url_path(settings: Settings) -> Path:
    return settings.state_bin / "open-url"


OPEN_URL = """#!/bin/sh
# GH_BROWSER (and any tool's browser command) in the browser terminal: this machine has no browser;
# the page makes a printed link clickable.
if [ "$#" -eq 0 ]; then
  echo "usage: open-url URL... (prints each URL to open in your own browser)" >&2
  exit 2
fi
for url in "$@"; do
  printf '\\n  Open this link in your browser (Ctrl+click it, Cmd+click on a Mac, or copy it):\\n'
  printf '  %s\\n\\n' "$url"
done
"""

GH_LOGIN = """#!/bin/sh
# gh-login: sign the GitHub CLI in to github.com from the browser terminal (device code), then let
# git over https use that login. Extra arguments go to `gh auth login` (e.g. --scopes workflow).
if [ -n "${GH_TOKEN:-}${GITHUB_TOKEN:-}" ]; then
  echo "gh-login: GH_TOKEN or GITHUB_TOKEN is set here, and gh and git already use it (gh auth status)." >&2
  echo "          To sign in as someone else instead: unset GH_TOKEN GITHUB_TOKEN; gh-login" >&2
  exit 0
fi
if ! command -v gh >/dev/null 2>&1; then
  echo "gh-login: gh is not installed yet: see the setup step \\"gh\\" on the page's setup panel" >&2
  exit 1
fi
GH_BROWSER="${GH_BROWSER:-@OPEN_URL@}"
export GH_BROWSER
gh auth login --hostname github.com --git-protocol https --web "$@" || exit $?
exec gh auth setup-git --hostname github.com
"""


def write_commands(settings: Settings) -> None:
    """`$STATE/bin/open-url` and `$STATE/bin/gh-login` for the shells (written by tmuxd at start)."""
    state.atomic_write_bytes(open_url_path(settings), OPEN_URL.encode(), mode=0o755)
    login = GH_LOGIN.replace("@OPEN_URL@", shlex.quote(str(open_url_path(settings))))
    state.atomic_write_bytes(settings.state_bin / "gh-login", login.encode(), mode=0o755)


def find_gh(settings: Settings, env: Mapping[str, str]) -> str | None:
    """The gh setup installed (~/.local/bin), else one on the shells' PATH (a laptop's own)."""
    installed = settings.local_bin / "gh"
    if installed.is_file():
        return str(installed)
    return shutil.which("gh", path=env.get("PATH", ""))


def helper_for(gh: str) -> str:
    """The value `gh auth setup-git` writes: git runs it through a shell, hence the quoting."""
    return f"!{shlex.quote(gh)} auth git-credential"


def configure_git(gh: str, env: Mapping[str, str], log: Callable[[str], None]) -> None:
    """github.com's (and gists') credential helper in the global git config → gh.

    The empty first value resets helpers inherited from broader config for these hosts only, as
    `gh auth setup-git` does; other hosts keep theirs. A helper of the user's own for one of these
    hosts (not a gh) is kept. Rewriting only on change keeps reruns idempotent.
    """
    wanted = ["", helper_for(gh)]
    for host in HOSTS:
        key = f"credential.https://{host}.helper"
        current = _git(["config", "--global", "--get-all", key], env, allow_missing=True)
        values = current.split("\n") if current else []
        if values == wanted:
            log(f"{key} already uses {gh}")
            continue
        own = [v for v in values if v and "auth git-credential" not in v]
        if own:
            log(f"{key} kept: your own helper {own[0]!r}")
            continue
        _git(["config", "--global", "--replace-all", key, ""], env, log=log)
        _git(["config", "--global", "--add", key, wanted[1]], env, log=log)
        log(f"{key} → {wanted[1]}")


def _git(
    args: list[str], env: Mapping[str, str], allow_missing: bool = False, log: Callable[[str], None] = _quiet
) -> str:
    """git's output; CredentialError naming git's own last line. A config file locked by another
    writer (the user, or one of their git commands) is waited for, up to a bound."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    result = _run_git(args, env)
    if _locked(result):
        log(f"the git config file is locked by another writer; waiting up to {LOCK_WAIT_SECONDS:.0f} s")
    while _locked(result) and time.monotonic() < deadline:
        time.sleep(LOCK_RETRY_SECONDS)
        result = _run_git(args, env)
    # `git config --get-all` exits 1 when the key is not set at all.
    if result.returncode == 1 and allow_missing and not result.stderr.strip():
        return ""
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise CredentialError(f"git {' '.join(args[:2])} exited {result.returncode}: {detail[0]}")
    return result.stdout.rstrip("\n")


def _locked(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 0 and "could not lock config file" in result.stderr


def _run_git(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredentialError(f"git {args[0]} failed: {exc}") from None
