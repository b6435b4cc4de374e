"""The shells' GitHub commands: `open-url` (GH_BROWSER) run by the real gh, and `gh-login`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import github, redact
from services.config import Settings
from services.shell_env import shell_environment, shell_path
from services.tmux import TmuxSessions
from tests.conftest import Stack
from tests.helpers import env_for_subprocess, short_tempdir, start_tmuxd, wait_until
from tests.test_tmuxd import capture

PROMPT = "Open this link in your browser (Ctrl+click it, Cmd+click on a Mac, or copy it):"


@pytest.fixture
def settings() -> Iterator[Settings]:
    root = short_tempdir("cag-")
    (root / "home").mkdir()
    settings = Settings.from_env({"HOME": str(root / "home"), "CODING_AGENTS_STATE_DIR": str(root / "state")})
    settings.state_bin.mkdir(parents=True)
    github.write_commands(settings)
    yield settings
    shutil.rmtree(root, ignore_errors=True)


def run(argv: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def shell_env(settings: Settings, **extra: str) -> dict[str, str]:
    """What a shell of the app gets, minus any GitHub login of the machine running the tests."""
    base = {
        k: v for k, v in env_for_subprocess().items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "GH_BROWSER")
    }
    env = shell_environment(settings, base) | {"GH_CONFIG_DIR": str(settings.home / ".config" / "gh")}
    return env | extra


def test_the_shells_open_links_by_printing_them(settings: Settings) -> None:
    env = shell_env(settings)
    assert env["GH_BROWSER"] == str(settings.state_bin / "open-url")
    result = run([env["GH_BROWSER"], "https://github.com/login/device"], env)
    assert result.returncode == 0
    assert "Open this link in your browser" in result.stdout
    assert "\n  https://github.com/login/device\n" in result.stdout
    usage = run([env["GH_BROWSER"]], env)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: open-url URL")


def test_a_users_own_gh_browser_is_kept(settings: Settings) -> None:
    assert shell_environment(settings, {"GH_BROWSER": "lynx"})["GH_BROWSER"] == "lynx"


def test_the_real_gh_opens_its_links_through_open_url(settings: Settings) -> None:
    """gh runs GH_BROWSER for every link it opens (`auth login --web` too); no network needed here."""
    gh = shutil.which("gh")
    assert gh is not None, "the GitHub CLI is needed: apt-get install gh (scripts/test installs it)"
    result = run([gh, "browse", "--repo", "cli/cli"], shell_env(settings, GH_TOKEN="dummy-token-for-gh"))
    assert result.returncode == 0, result.stderr
    assert f"{PROMPT}\n  https://github.com/cli/cli\n" in result.stdout


def fake_gh(folder: Path) -> Path:
    """Stands in for gh where github.com would be needed (unreachable from tests): records its calls."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "gh"
    script.write_text(f'#!/bin/sh\necho "$GH_BROWSER | $*" >> {folder / "calls"}\n')
    script.chmod(0o755)
    return folder / "calls"


def test_gh_login_signs_in_by_device_code_then_sets_up_git(settings: Settings) -> None:
    calls = fake_gh(settings.local_bin)
    result = run([str(settings.state_bin / "gh-login"), "--scopes", "workflow"], shell_env(settings))
    assert result.returncode == 0, result.stderr
    opener = settings.state_bin / "open-url"
    assert calls.read_text().splitlines() == [
        f"{opener} | auth login --hostname github.com --git-protocol https --web --scopes workflow",
        f"{opener} | auth setup-git --hostname github.com",
    ]


def test_gh_login_with_a_token_given_says_so_and_changes_nothing(settings: Settings) -> None:
    calls = fake_gh(settings.local_bin)
    result = run([str(settings.state_bin / "gh-login")], shell_env(settings, GH_TOKEN="dummy-token-for-gh"))
    assert result.returncode == 0
    assert "GH_TOKEN or GITHUB_TOKEN is set here, and gh and git already use it" in result.stderr
    assert not calls.exists()


def test_gh_login_without_gh_points_at_the_setup_step(settings: Settings) -> None:
    # The script needs only sh's builtins (the #!/bin/sh line is absolute); the usual folders hold gh.
    env = shell_env(settings) | {"PATH": str(settings.state_bin)}
    result = run([str(settings.state_bin / "gh-login")], env)
    assert result.returncode == 1
    assert 'gh is not installed yet: see the setup step "gh"' in result.stderr


def test_a_failed_login_stops_before_git_is_touched(settings: Settings) -> None:
    settings.local_bin.mkdir(parents=True, exist_ok=True)
    (settings.local_bin / "gh").write_text('#!/bin/sh\necho "$*" >> "$0.calls"\nexit 4\n')
    (settings.local_bin / "gh").chmod(0o755)
    result = run([str(settings.state_bin / "gh-login")], shell_env(settings))
    assert result.returncode == 4
    assert (settings.local_bin / "gh.calls").read_text().splitlines() == [
        "auth login --hostname github.com --git-protocol https --web"
    ]


def test_a_github_token_given_to_the_app_is_masked_in_its_logs(tmp_path: Path) -> None:
    token, other = "ghp_" + "A1b2C3d4" * 4, "github_pat_" + "Z9y8X7w6" * 5
    Settings.from_env({"HOME": str(tmp_path), "GH_TOKEN": token, "GITHUB_TOKEN": f" {other}\n"})
    assert redact.redact(f"gh said {token} and {other}") == "gh said [redacted] and [redacted]"


def test_in_a_tmux_shell_of_the_app_gh_has_the_token_and_prints_its_links(stack: Stack) -> None:
    """As a user types it: GH_TOKEN given to the app reaches the shell tmuxd starts, and the real gh's
    links come out through `open-url` (the page makes them clickable)."""
    assert shutil.which("gh"), "the GitHub CLI is needed: apt-get install gh (scripts/test installs it)"
    settings = stack.settings
    tmux = [settings.tmux_bin, "-S", str(settings.tmux_socket)]
    tmuxd = start_tmuxd(stack.env | {"GH_TOKEN": "dummy-token-for-gh"})
    try:
        wait_until(lambda: subprocess.run([*tmux, "list-sessions"], capture_output=True).returncode != 1)
        sessions = TmuxSessions.for_socket(
            settings.tmux_socket, settings.tmux_bin, settings.projects_dir, shell_path(settings, stack.env)
        )
        sessions.create("s", cols=200, rows=40)
        typed = "gh browse --repo cli/cli; echo exit=$?; gh-login; echo login=$?"
        subprocess.run([*tmux, "send-keys", "-t", "=s:", typed, "Enter"], check=True)
        wait_until(lambda: "login=0" in capture(tmux, "=s:"), timeout=60, what="gh and gh-login to finish")
        screen = capture(tmux, "=s:")
        assert "exit=0" in screen, screen
        link = f"{PROMPT}\n  https://github.com/cli/cli\n"
        assert link in screen
        assert "GH_TOKEN or GITHUB_TOKEN is set here" in screen
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        tmuxd.wait(timeout=10)
