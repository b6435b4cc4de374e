from __future__ import annotations

from pathlib import Path

import pytest

from services.config import PROJECT_ROOT, ConfigError, Settings, normalize_host


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({"HOME": str(tmp_path)})
    assert s.port == 8000
    assert s.state_dir == tmp_path / ".coding-agents"
    assert s.bind_host == "127.0.0.1" and not s.apps_mode
    assert s.tmux_socket == s.state_dir / "tmux.sock"


def test_apps_mode_binds_everywhere(tmp_path: Path) -> None:
    s = Settings.from_env(
        {"HOME": str(tmp_path), "DATABRICKS_APP_NAME": "agents", "DATABRICKS_APP_PORT": "8123"}
    )
    assert s.apps_mode and s.bind_host == "0.0.0.0" and s.port == 8123


@pytest.mark.parametrize(
    ("raw", "message"),
    [("abc", "must be a port number"), ("0", "between 1 and 65535"), ("70000", "between 1 and 65535")],
)
def test_bad_port_is_a_clear_error(tmp_path: Path, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"HOME": str(tmp_path), "DATABRICKS_APP_PORT": raw})


@pytest.mark.parametrize("home", [None, "", "/", str(PROJECT_ROOT), str(PROJECT_ROOT) + "/"])
def test_unusable_home_or_the_app_folder_falls_back_to_its_own_folder(home: str | None) -> None:
    env = {} if home is None else {"HOME": home}
    settings = Settings.from_env(env)
    assert settings.home == PROJECT_ROOT / ".home"
    assert settings.projects_dir == PROJECT_ROOT / ".home" / "projects"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("adb-1.azuredatabricks.net", "https://adb-1.azuredatabricks.net"),
        (" https://x.cloud.databricks.com/ ", "https://x.cloud.databricks.com"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("", ""),
    ],
)
def test_normalize_host(raw: str, expected: str) -> None:
    assert normalize_host(raw) == expected


def test_secrets_come_from_the_environment_else_from_the_state_dirs_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "secrets").mkdir(parents=True)
    (state / "secrets" / "DATABRICKS_TOKEN").write_text("dapi-from-file\n")
    (state / "secrets" / "DATABRICKS_CLIENT_SECRET").write_text("sp-secret-from-file\n")
    (state / "secrets" / "CODING_AGENTS_TOKEN").write_text("local-token-from-file\n")
    env = {"HOME": str(tmp_path), "CODING_AGENTS_STATE_DIR": str(state)}
    s = Settings.from_env(env)
    assert (s.databricks_token, s.client_secret, s.token_override) == (
        "dapi-from-file",
        "sp-secret-from-file",
        "local-token-from-file",
    )
    assert "from-file" not in repr(s)
    assert Settings.from_env({**env, "DATABRICKS_TOKEN": "dapi-env"}).databricks_token == "dapi-env"


def test_an_unreadable_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "secrets" / "DATABRICKS_TOKEN").mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(ConfigError, match=r"DATABRICKS_TOKEN: cannot read .*secrets/DATABRICKS_TOKEN"):
        Settings.from_env({"HOME": str(tmp_path), "CODING_AGENTS_STATE_DIR": str(state)})
