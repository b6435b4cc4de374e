"""scripts/deploy end to end: `python -m services.deploy` in a clone of this project, with the real
databricks-sdk, against the fake workspace (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import OWNER_EMAIL, OWNER_TOKEN
from tests.deploy.conftest import Project
from tests.fake_workspace import FakeWorkspace

APP = "coding-agents"
FOLDER = f"/Users/{OWNER_EMAIL}/apps/{APP}"  # the fake keeps paths in the /Users/... form
SOURCE_PATH = f"/Workspace{FOLDER}"
SCOPE = f"{APP}-secrets"


def imports(ws: FakeWorkspace, since: int = 0) -> list[str]:
    """Files uploaded after request number `since`, relative to the app folder."""
    with ws.lock:
        calls = ws.requests[since:]
    out = []
    for call in calls:
        if call.path == "/api/2.0/workspace/import":
            marker = b'name="path"\r\n\r\n'
            start = call.body.index(marker) + len(marker)
            path = call.body[start : call.body.index(b"\r\n", start)].decode()
            out.append(path.removeprefix(SOURCE_PATH + "/"))
    return out


def assert_no_token(result: subprocess.CompletedProcess[str]) -> None:
    assert OWNER_TOKEN not in result.stdout and OWNER_TOKEN not in result.stderr


def test_first_deploy_creates_everything_and_prints_the_url(
    project: Project, workspace: FakeWorkspace
) -> None:
    result = project.deploy(workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert_no_token(result)
    out = result.stdout
    for header in (
        "[1/6] Credentials",
        "[2/6] Staging",
        f"[3/6] App {APP}",
        "[4/6] Secret",
        "[5/6] Upload",
        "[6/6] Deploy",
    ):
        assert header in out
    assert f"{OWNER_EMAIL} deploys app {APP} to {workspace.url}, from {SOURCE_PATH}" in out
    assert f"App {APP} is running: https://{APP}-1234567890.aws.databricksapps.com" in out

    app = workspace.apps_api.apps[APP]
    assert app["creator"] == OWNER_EMAIL
    assert app["resources"] == [
        {
            "name": "databricks-token",
            "description": "The owner's token (scripts/deploy)",
            "secret": {"scope": SCOPE, "key": "databricks-token", "permission": "READ"},
        }
    ]
    assert workspace.apps_api.scopes[SCOPE]["secrets"] == {"databricks-token": OWNER_TOKEN}
    assert workspace.apps_api.scopes[SCOPE]["acls"] == {OWNER_EMAIL: "MANAGE"}
    # States had to be polled: compute STARTING -> ACTIVE, deployment IN_PROGRESS -> SUCCEEDED.
    assert "compute: STARTING" in out and "compute: ACTIVE" in out
    assert "IN_PROGRESS" in out and "SUCCEEDED" in out and f"app {APP}: RUNNING" in out

    files = {p.removeprefix(FOLDER + "/") for p in workspace.files if p.startswith(FOLDER + "/")}
    assert {"app.yaml", "requirements.txt", "web/vendor/@xterm/xterm/lib/xterm.mjs"} <= files
    assert {"skills/vendor/upstream/skills/alpha/SKILL.md", "services/deploy/__main__.py"} <= files
    assert {fmt for path, fmt in workspace.formats.items() if path.startswith(FOLDER)} == {"AUTO"}
    manifest = json.loads(workspace.files[f"{FOLDER}/.deploy-manifest.json"])["files"]
    assert set(manifest) == files - {".deploy-manifest.json"}

    (deployment,) = workspace.apps_api.deployments.values()
    assert deployment["source_code_path"] == SOURCE_PATH and deployment["mode"] == "SNAPSHOT"
    snapshot = workspace.apps_api.snapshots[deployment["deployment_id"]]
    assert b"valueFrom" in snapshot["app.yaml"]


def test_a_second_run_uploads_only_what_changed_and_deletes_what_is_gone(
    project: Project, workspace: FakeWorkspace
) -> None:
    assert project.deploy(workspace=workspace).returncode == 0
    first = len(imports(workspace))
    assert first > 150

    readme = project.root / "README.md"
    readme.write_text(readme.read_text() + "\nOne more line.\n")
    project.git("rm", "--quiet", "-r", "scripts/bench.py", "tests/setup")
    before = len(workspace.requests)
    result = project.deploy(workspace=workspace)
    assert result.returncode == 0, result.stderr
    # The manifest is written twice: without the changing files first, then complete. VERSION
    # changes too: the deployed tree is now HEAD plus an edit (`-dirty`).
    assert sorted(imports(workspace, before)) == [
        ".deploy-manifest.json",
        ".deploy-manifest.json",
        "README.md",
        "VERSION",
    ]
    assert f"{FOLDER}/README.md" in workspace.files
    assert not [
        p for p in workspace.files if p.startswith((f"{FOLDER}/scripts/bench.py", f"{FOLDER}/tests/setup"))
    ]
    assert f"{FOLDER}/tests/setup" not in workspace.dirs  # emptied folders go too
    assert "uploaded 2: README.md, VERSION" in result.stdout and "deleted " in result.stdout
    assert len(workspace.apps_api.deployments) == 2  # every run deploys

    before, deletes = len(workspace.requests), len(workspace.calls(r"^/api/2\.0/workspace/delete$"))
    result = project.deploy(workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert imports(workspace, before) == []
    assert len(workspace.calls(r"^/api/2\.0/workspace/delete$")) == deletes


def test_no_secret_skips_the_token_and_warns_when_the_app_lacks_it(
    project: Project, workspace: FakeWorkspace
) -> None:
    result = project.deploy("--no-secret", workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert "[4/6] Secret: skipped (--no-secret)" in result.stdout
    assert "has no 'databricks-token' resource" in result.stderr
    assert workspace.calls(r"^/api/2\.0/secrets/") == []
    assert not workspace.apps_api.apps[APP].get("resources")


def test_a_profile_from_databrickscfg_is_used(project: Project, workspace: FakeWorkspace) -> None:
    cfg = project.home / ".databrickscfg"
    cfg.write_text(f"[fake]\nhost = {workspace.url}\ntoken = {OWNER_TOKEN}\n")
    cfg.chmod(0o600)
    result = project.deploy("--profile", "fake", "--app", "from-profile")
    assert result.returncode == 0, result.stderr
    assert workspace.apps_api.scopes["from-profile-secrets"]["secrets"]["databricks-token"] == OWNER_TOKEN


def test_missing_credentials_fail_at_the_first_step(project: Project) -> None:
    result = project.deploy()
    assert result.returncode == 1
    assert "deploy failed at step 'credentials'" in result.stderr
    assert "DATABRICKS_HOST and DATABRICKS_TOKEN, or pass --profile" in result.stderr


@pytest.mark.parametrize(
    ("refusal", "step", "expected"),
    [
        (
            (
                "POST",
                r"^/api/2\.0/secrets/put$",
                403,
                "PERMISSION_DENIED",
                "No WRITE on coding-agents-secrets.",
            ),
            "secret",
            "you may not write to secret scope coding-agents-secrets",
        ),
        (
            ("POST", r"^/api/2\.0/apps$", 403, "PERMISSION_DENIED", "Not allowed to create apps."),
            "app",
            "creating and deploying apps needs CAN MANAGE",
        ),
    ],
    ids=["secret-put-403", "app-create-403"],
)
def test_a_refused_call_stops_with_the_workspace_message_and_a_hint(
    project: Project,
    workspace: FakeWorkspace,
    refusal: tuple[str, str, int, str, str],
    step: str,
    expected: str,
) -> None:
    workspace.refusals.append(refusal)
    result = project.deploy(workspace=workspace)
    assert result.returncode == 1
    assert f"deploy failed at step '{step}'" in result.stderr
    assert f"{refusal[4]} [PERMISSION_DENIED]" in result.stderr
    assert f"hint: {expected}" in result.stderr
    assert_no_token(result)
    assert imports(workspace) == [] and workspace.apps_api.deployments == {}


def test_an_app_name_the_workspace_rejects_is_explained(project: Project, workspace: FakeWorkspace) -> None:
    result = project.deploy("--app", "a" * 31, workspace=workspace)
    assert result.returncode == 1
    assert "Invalid app name" in result.stderr and "at most 30 characters" in result.stderr


def test_a_bad_app_name_is_bad_usage(project: Project, workspace: FakeWorkspace) -> None:
    result = project.deploy("--app", "Coding_Agents", workspace=workspace)
    assert result.returncode == 2
    assert "invalid app name 'Coding_Agents'" in result.stderr
    assert workspace.requests == []


def test_a_scope_that_is_not_yours_is_named(project: Project, workspace: FakeWorkspace) -> None:
    workspace.apps_api.add_scope(SCOPE, "bob@example.com")
    result = project.deploy(workspace=workspace)
    assert result.returncode == 1
    assert f"secret scope {SCOPE} exists but is not yours" in result.stderr
    assert workspace.apps_api.scopes[SCOPE]["secrets"] == {}


def test_a_folder_not_made_by_deploy_is_left_alone(project: Project, workspace: FakeWorkspace) -> None:
    workspace.dirs |= {"/Users", f"/Users/{OWNER_EMAIL}", f"/Users/{OWNER_EMAIL}/apps", FOLDER}
    workspace.files[f"{FOLDER}/notes.txt"] = b"mine"
    result = project.deploy(workspace=workspace)
    assert result.returncode == 1
    assert "holds 1 files but no .deploy-manifest.json" in result.stderr
    assert workspace.files[f"{FOLDER}/notes.txt"] == b"mine"


def test_a_failed_deployment_exits_1_with_its_message(project: Project, workspace: FakeWorkspace) -> None:
    workspace.apps_api.fail_deployments = "Error installing requirements: no matching distribution"
    result = project.deploy(workspace=workspace)
    assert result.returncode == 1
    assert "deploy failed at step 'deploy'" in result.stderr
    assert "FAILED (Error installing requirements: no matching distribution)" in result.stderr


def test_a_stopped_app_is_started_before_the_deployment(project: Project, workspace: FakeWorkspace) -> None:
    assert project.deploy("--no-secret", workspace=workspace).returncode == 0
    workspace.apps_api.apps[APP]["compute_status"] = {
        "state": "STOPPED",
        "message": "App compute is stopped.",
    }
    result = project.deploy("--no-secret", workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert "starting the app's compute (it was STOPPED)" in result.stdout
    assert len(workspace.calls(rf"^/api/2\.0/apps/{APP}/start$")) == 1
