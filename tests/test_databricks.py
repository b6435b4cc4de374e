"""Owner lookup through the real databricks-sdk against the fake workspace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services import databricks
from services.config import Settings
from services.databricks import WorkspaceUnavailable
from tests.conftest import APP_CLIENT_ID, APP_CLIENT_SECRET, OWNER_EMAIL, OWNER_NAME, OWNER_TOKEN
from tests.fake_workspace import FakeWorkspace


def settings_for(tmp_path: Path, host: str, **extra: str) -> Settings:
    env = {"HOME": str(tmp_path), "DATABRICKS_HOST": host, "DATABRICKS_TOKEN": OWNER_TOKEN, **extra}
    return Settings.from_env(env)


def test_owner_is_the_user_behind_the_pat_even_with_app_credentials_around(
    tmp_path: Path, workspace: FakeWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Apps injects the app's service principal: the SDK would refuse mixed auth or act as the app.
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", APP_CLIENT_ID)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", APP_CLIENT_SECRET)
    owner = databricks.lookup_owner(settings_for(tmp_path, workspace.url), timeout=2)
    assert (owner.email, owner.display_name, owner.source) == (OWNER_EMAIL, OWNER_NAME, "DATABRICKS_TOKEN")
    assert owner.key == OWNER_EMAIL.lower()
    (me,) = workspace.calls("/scim/v2/Me")
    assert me.headers["authorization"] == f"Bearer {OWNER_TOKEN}"


def test_explicit_owner_needs_no_workspace(tmp_path: Path) -> None:
    settings = Settings.from_env({"HOME": str(tmp_path), "CODING_AGENTS_OWNER": "Bob@Example.com"})
    owner = databricks.lookup_owner(settings)
    assert (owner.email, owner.key, owner.source) == (
        "Bob@Example.com",
        "bob@example.com",
        "CODING_AGENTS_OWNER",
    )


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("unauthorized", "Invalid access token"),
        ("fail", "failing on purpose"),
    ],
    ids=["token refused", "workspace error"],
)
def test_lookup_failures_name_the_reason(
    tmp_path: Path, workspace: FakeWorkspace, mode: str, message: str
) -> None:
    workspace.mode = mode
    with pytest.raises(WorkspaceUnavailable, match=message):
        databricks.lookup_owner(settings_for(tmp_path, workspace.url), timeout=1)


@pytest.mark.parametrize(("fault", "message"), [("down", "refused"), ("hang", "did not answer within 1 s")])
def test_unreachable_or_hanging_workspace_fails_within_the_timeout(
    tmp_path: Path, workspace: FakeWorkspace, fault: str, message: str
) -> None:
    if fault == "down":
        workspace.stop()
    else:
        workspace.mode = "hang"
    started = time.monotonic()
    with pytest.raises(WorkspaceUnavailable, match=message):
        databricks.lookup_owner(settings_for(tmp_path, workspace.url), timeout=1)
    # Bounded by the client's timeouts, not the SDK's default five-minute retry window.
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABRICKS_TOKEN": OWNER_TOKEN}, "DATABRICKS_HOST is not set"),
        ({"DATABRICKS_HOST": "https://x.cloud.databricks.com"}, r"no token of the owner: connect your"),
    ],
    ids=["no host", "no token"],
)
def test_missing_configuration_is_named(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(WorkspaceUnavailable, match=message):
        databricks.lookup_owner(Settings.from_env({"HOME": str(tmp_path), **env}))


def test_a_service_principal_token_is_not_an_owner(tmp_path: Path, workspace: FakeWorkspace) -> None:
    workspace.add_user("sp-token", "9f1c-uuid-of-a-service-principal", "some-sp")
    settings = Settings.from_env(
        {"HOME": str(tmp_path), "DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": "sp-token"}
    )
    with pytest.raises(WorkspaceUnavailable, match="CODING_AGENTS_OWNER"):
        databricks.lookup_owner(settings, timeout=2)


def test_owner_file_round_trip_holds_no_secret(tmp_path: Path) -> None:
    settings = Settings.from_env({"HOME": str(tmp_path), "DATABRICKS_TOKEN": OWNER_TOKEN})
    owner = databricks.Owner(OWNER_EMAIL, OWNER_NAME, "DATABRICKS_TOKEN")
    databricks.save_owner(settings, owner)
    assert databricks.load_owner(settings) == owner
    assert OWNER_TOKEN not in settings.files.owner.read_text()
    assert OWNER_TOKEN not in repr(settings)
