"""What shells inherit: never the app's own credentials; on Apps, the owner's PAT only via the profile."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from services.config import ConfigError, Settings
from services.shell_env import shell_environment, shell_secrets
from services.tmux import TmuxSessions
from tests.conftest import Stack
from tests.fake_memory import FakeContainer
from tests.helpers import start_tmuxd, wait_until

APP_ENV = {
    "PATH": "/usr/bin:/bin",
    "TMUX": "/tmp/tmux-0/default,1,0",
    "DATABRICKS_HOST": "adb-1.azuredatabricks.net/",
    "DATABRICKS_TOKEN": "dapi-owner",
    "DATABRICKS_CLIENT_ID": "app-sp",
    "DATABRICKS_CLIENT_SECRET": "app-sp-secret",
    "DATABRICKS_AUTH_TYPE": "oauth-m2m",
    "SUPERVISOR_SERVER_URL": "unix:///x.sock",
    "CODING_AGENTS_TOKEN": "local-token-0123456789",
    "EDITOR": "micro",
}


def test_apps_shells_act_as_the_owner_through_the_profile(tmp_path: Path) -> None:
    base = {**APP_ENV, "HOME": str(tmp_path), "DATABRICKS_APP_NAME": "agents"}
    env = shell_environment(Settings.from_env(base), base)
    for gone in (
        "TMUX",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CLIENT_ID",
        "DATABRICKS_CLIENT_SECRET",
        "CODING_AGENTS_TOKEN",
    ):
        assert gone not in env, gone
    assert shell_secrets(Settings.from_env(base)) == {}  # the PAT reaches shells via the profile only
    assert "DATABRICKS_AUTH_TYPE" not in env and "SUPERVISOR_SERVER_URL" not in env
    assert env["DATABRICKS_HOST"] == "https://adb-1.azuredatabricks.net"
    assert env["DATABRICKS_CONFIG_PROFILE"] == "DEFAULT"
    assert env["EDITOR"] == "micro" and env["HOME"] == str(tmp_path)


def test_local_shells_keep_the_users_own_token_but_never_app_credentials(tmp_path: Path) -> None:
    base = {**APP_ENV, "HOME": str(tmp_path)}
    env = shell_environment(Settings.from_env(base), base)
    # The laptop user's own PAT reaches shells apart from the environment of the program starting
    # them (tmux's global environment, a degraded shell's exec), never the local token.
    assert "DATABRICKS_TOKEN" not in env
    assert shell_secrets(Settings.from_env(base)) == {"DATABRICKS_TOKEN": "dapi-owner"}
    assert "CODING_AGENTS_TOKEN" not in env
    assert "DATABRICKS_CLIENT_SECRET" not in env and "TMUX" not in env
    assert "DATABRICKS_CONFIG_PROFILE" not in env


def test_shells_get_a_user_name_when_the_platform_sets_none(tmp_path: Path) -> None:

    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # Databricks Apps sets no USER/LOGNAME
    env = shell_environment(Settings.from_env(base), base)
    assert env["USER"] == env["LOGNAME"] == pwd.getpwuid(os.getuid()).pw_name
    kept = shell_environment(Settings.from_env(base), {**base, "USER": "someone"})
    assert kept["USER"] == kept["LOGNAME"] == "someone"


def test_shells_in_tmux_are_told_the_terminal_does_true_colour(tmux: TmuxSessions) -> None:
    # Gemini CLI warns about missing true colour unless COLORTERM says so; xterm.js does 24-bit colour.
    tmux.create("colours")
    tmux._run("send-keys", "-t", "=colours:", 'echo "CT=[$COLORTERM]"', "Enter")

    def shown() -> bool:
        return "CT=[truecolor]" in "\n".join(tmux._run("capture-pane", "-p", "-t", "=colours:"))

    wait_until(shown, timeout=10, what="COLORTERM echoed by the shell")


def fake_container(root: Path, limit_mib: int) -> Path:
    return FakeContainer(root, limit_mib).root


def test_node_heap_cap_follows_the_containers_limit(tmp_path: Path) -> None:
    root = fake_container(tmp_path / "root", limit_mib=6144)
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CODING_AGENTS_MEMORY_ROOT": str(root)}
    env = shell_environment(Settings.from_env(base), base)
    assert env["NODE_OPTIONS"] == "--max-old-space-size=1536"
    # Gemini would otherwise relaunch itself with half the host's RAM, overriding NODE_OPTIONS.
    assert env["GEMINI_CLI_NO_RELAUNCH"] == "true"
    # The user's own NODE_OPTIONS are kept, with the cap added.
    env = shell_environment(Settings.from_env(base), {**base, "NODE_OPTIONS": "--enable-source-maps"})
    assert env["NODE_OPTIONS"] == "--enable-source-maps --max-old-space-size=1536"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"CODING_AGENTS_NODE_HEAP_MB": "900"}, "--max-old-space-size=900"),
        ({"CODING_AGENTS_NODE_HEAP_MB": "off"}, None),
        ({"NODE_OPTIONS": "--max-old-space-size=3000"}, "--max-old-space-size=3000"),
    ],
    ids=["override", "off", "users-own-cap"],
)
def test_node_heap_cap_settings(tmp_path: Path, extra: dict[str, str], expected: str | None) -> None:
    root = fake_container(tmp_path / "root", limit_mib=6144)
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CODING_AGENTS_MEMORY_ROOT": str(root), **extra}
    env = shell_environment(Settings.from_env(base), base)
    assert env.get("NODE_OPTIONS") == expected


def test_no_heap_cap_without_a_container_limit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/meminfo").write_text("MemTotal: 67108864 kB\nMemAvailable: 60000000 kB\n")
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CODING_AGENTS_MEMORY_ROOT": str(root)}
    env = shell_environment(Settings.from_env(base), base)
    assert "NODE_OPTIONS" not in env and "GEMINI_CLI_NO_RELAUNCH" not in env


def test_a_bad_heap_setting_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CODING_AGENTS_NODE_HEAP_MB must be a number of MiB, or off"):
        Settings.from_env({"HOME": str(tmp_path), "CODING_AGENTS_NODE_HEAP_MB": "lots"})


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (a README requirement)")
def test_node_in_a_tmux_shell_runs_under_the_cap(stack: Stack) -> None:
    """The real path: services.tmuxd builds the server's environment, a shell in it starts Node, and
    V8 reports the capped heap (old space 1536 MiB plus its young generation)."""
    root = fake_container(stack.root / "fakeroot", limit_mib=6144)
    env = {**stack.env, "CODING_AGENTS_MEMORY_ROOT": str(root)}
    settings = stack.settings
    tmux = [settings.tmux_bin, "-S", str(settings.tmux_socket)]
    out = stack.root / "heap.txt"
    script = "console.log(Math.round(require('v8').getHeapStatistics().heap_size_limit / 1048576))"
    command = (
        f"echo $NODE_OPTIONS $GEMINI_CLI_NO_RELAUNCH > {out}.tmp; "
        f'node -e "{script}" >> {out}.tmp; mv {out}.tmp {out}; sleep 60'
    )
    tmuxd = start_tmuxd(env)
    try:
        wait_until(lambda: subprocess.run([*tmux, "list-sessions"], capture_output=True).returncode != 1)
        subprocess.run([*tmux, "new-session", "-d", "-s", "heap", command], check=True)
        text = wait_until(lambda: out.exists() and out.read_text(), timeout=30, what="the shell report")
        assert isinstance(text, str)
        first, heap = text.split("\n")[:2]
        assert first == "--max-old-space-size=1536 true"
        assert 1536 <= int(heap) < 1536 + 128
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        tmuxd.wait(timeout=10)
