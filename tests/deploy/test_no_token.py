"""`scripts/deploy --no-token` (issue 15, item 5): no secret anywhere; the app's creator owns it."""

from __future__ import annotations

from tests.conftest import OWNER_EMAIL
from tests.deploy.conftest import Project
from tests.deploy.test_deploy import APP, SCOPE, assert_no_token
from tests.fake_workspace import FakeWorkspace


def test_no_token_deploys_without_any_secret(project: Project, workspace: FakeWorkspace) -> None:
    result = project.deploy("--no-token", workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert_no_token(result)
    assert "[4/6] Secret: none (--no-token)" in result.stdout
    assert f"the app's owner is its creator, {OWNER_EMAIL}" in result.stdout
    assert workspace.calls(r"^/api/2\.0/secrets/") == []
    assert not workspace.apps_api.apps[APP].get("resources")
    (deployment,) = workspace.apps_api.deployments.values()
    app_yaml = workspace.apps_api.snapshots[deployment["deployment_id"]]["app.yaml"].decode()
    assert "DATABRICKS_TOKEN" in app_yaml and "- name: DATABRICKS_TOKEN" not in app_yaml
    assert "databricks-token" not in app_yaml and "ANTHROPIC_MODEL" in app_yaml


def test_no_token_removes_the_secret_an_earlier_deploy_attached(
    project: Project, workspace: FakeWorkspace
) -> None:
    assert project.deploy(workspace=workspace).returncode == 0
    assert workspace.apps_api.apps[APP]["resources"]
    result = project.deploy("--no-token", workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert "app resource databricks-token removed" in result.stdout
    assert not workspace.apps_api.apps[APP].get("resources")
    assert SCOPE in workspace.apps_api.scopes  # the user's scope is theirs: left alone


def test_no_token_refuses_an_app_yaml_that_reads_the_token(
    project: Project, workspace: FakeWorkspace
) -> None:
    (project.root / "app.yaml").write_text(
        'command: ["bash", "scripts/run"]\nenv:\n'
        '  - name: DATABRICKS_TOKEN\n    valueFrom: "databricks-token"\n'
    )
    result = project.deploy("--no-token", workspace=workspace)
    assert result.returncode != 0
    assert "your app.yaml sets DATABRICKS_TOKEN" in result.stderr
    assert workspace.apps_api.deployments == {}


def test_no_token_and_no_secret_are_exclusive(project: Project, workspace: FakeWorkspace) -> None:
    result = project.deploy("--no-token", "--no-secret", workspace=workspace)
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_no_token_with_a_secret_scope_is_bad_usage(project: Project, workspace: FakeWorkspace) -> None:
    result = project.deploy("--no-token", "--secret-scope", "mine", workspace=workspace)
    assert result.returncode == 2 and "--no-token stores none" in result.stderr
    assert workspace.apps_api.apps == {}
