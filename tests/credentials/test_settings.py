"""The renewal knobs (services/config.py) and the profile edits of services.credentials.store."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.config import ConfigError, Settings
from services.credentials import profile


def test_renewal_defaults_to_a_day_renewed_two_hours_early(tmp_path: Path) -> None:
    settings = Settings.from_env({"HOME": str(tmp_path)})
    assert (settings.token_lifetime_seconds, settings.token_margin_seconds) == (86400, 7200)
    short = Settings.from_env({"HOME": str(tmp_path), "CODING_AGENTS_TOKEN_LIFETIME_SECONDS": "60"})
    assert (short.token_lifetime_seconds, short.token_margin_seconds) == (60, 30)  # half, by default


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CODING_AGENTS_TOKEN_LIFETIME_SECONDS": "a day"}, "whole number from 10 to 63072000, got 'a day'"),
        ({"CODING_AGENTS_TOKEN_LIFETIME_SECONDS": "5"}, "LIFETIME_SECONDS must be a whole number from 10 to"),
        (
            {"CODING_AGENTS_TOKEN_MARGIN_SECONDS": "0"},
            "MARGIN_SECONDS must be a whole number from 1 to 86399",
        ),
        (
            {"CODING_AGENTS_TOKEN_LIFETIME_SECONDS": "600", "CODING_AGENTS_TOKEN_MARGIN_SECONDS": "600"},
            "from 1 to 599, got '600'",
        ),
    ],
)
def test_bad_renewal_settings_are_named(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"HOME": str(tmp_path), **env})


def test_the_profile_token_is_replaced_and_dropped_keeping_everything_else(tmp_path: Path) -> None:
    settings = Settings.from_env({"HOME": str(tmp_path), "DATABRICKS_HOST": "https://ws.example.com"})
    cfg = tmp_path / ".databrickscfg"
    cfg.write_text(
        "# mine\n[DEFAULT]\nhost = old\ntoken = old-token\ncluster_id = c1\n\n[other]\ntoken = keep\n"
    )
    profile.write_profile(settings, "new-token-123")
    text = cfg.read_text()
    assert "token = new-token-123" in text and "old-token" not in text and "cluster_id = c1" in text
    assert "host = https://ws.example.com" in text and "[other]\ntoken = keep" in text
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    profile.drop_profile_token(settings)
    text = cfg.read_text()
    assert "new-token-123" not in text and "[other]\ntoken = keep" in text and text.startswith("# mine\n")


def test_the_creator_as_owner_keeps_the_git_name_a_connected_token_gave(tmp_path: Path) -> None:
    """The setup step runs at every start; the creator's record has no display name, so it must not
    replace the one the owner's SCIM record gave when the workspace was connected."""
    from services import identity
    from services.databricks import CREATOR_SOURCE, Owner

    settings = Settings.from_env({"HOME": str(tmp_path)})
    identity.git_identity(tmp_path, "Alice Example", "alice@example.com")
    identity.apply(settings, Owner("Alice@example.com", "Alice", CREATOR_SOURCE))
    text = (tmp_path / ".gitconfig").read_text()
    assert "Alice Example" in text
    identity.apply(settings, Owner("carol@example.com", "carol", CREATOR_SOURCE))  # another owner
    assert "carol@example.com" in (tmp_path / ".gitconfig").read_text()


def test_apps_mode_without_a_pat_nor_service_principal_names_what_to_set(tmp_path: Path) -> None:
    from services import databricks

    env = {"HOME": str(tmp_path), "DATABRICKS_APP_NAME": "a", "DATABRICKS_HOST": "https://ws.example.com"}
    with pytest.raises(databricks.WorkspaceUnavailable, match="DATABRICKS_CLIENT_ID/SECRET is set"):
        databricks.lookup_owner(Settings.from_env(env))
