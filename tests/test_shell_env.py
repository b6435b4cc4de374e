"""What shells inherit: never the app's own credentials; on Apps, the owner's PAT only via the profile."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from services.config import Settings
from services.shell_env import shell_environment, shell_secrets

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
