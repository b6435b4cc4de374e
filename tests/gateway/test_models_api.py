"""Model choices: the workspace's chat endpoints by family, and a per-agent choice that rewrites config."""

from __future__ import annotations

import json

from services import state
from tests.conftest import OWNER_EMAIL, Gateway
from tests.fake_workspace import FakeWorkspace

OWNER = {"X-Forwarded-Email": OWNER_EMAIL}


async def wait_ready(gw: Gateway) -> None:
    from tests.gateway.test_apps_mode import wait_owner_known

    await wait_owner_known(gw)


async def test_models_by_family_from_the_workspace(apps_gateway: Gateway, workspace: FakeWorkspace) -> None:
    await wait_ready(apps_gateway)
    workspace.endpoints = [
        {"name": "databricks-claude-sonnet-4-6", "task": "llm/v1/chat", "state": {"ready": "READY"}},
        {"name": "databricks-gemini-3-1-pro", "task": "llm/v1/chat", "state": {"ready": "READY"}},
        {"name": "databricks-gpt-5-3-codex", "task": "llm/v1/chat", "state": {"ready": "READY"}},
        {"name": "databricks-claude-broken", "task": "llm/v1/chat", "state": {"ready": "NOT_READY"}},
        {"name": "databricks-bge-large-en", "task": "llm/v1/embeddings", "state": {"ready": "READY"}},
    ]
    response = await apps_gateway.fetch("/api/models", auth=False, headers=OWNER)
    assert response.code == 200, response.body
    body = json.loads(response.body)
    assert body["families"] == {
        "anthropic": ["databricks-claude-sonnet-4-6"],
        "gemini": ["databricks-gemini-3-1-pro"],
        "openai": ["databricks-claude-sonnet-4-6", "databricks-gemini-3-1-pro", "databricks-gpt-5-3-codex"],
    }
    assert body["agents"]["claude"] == {
        "title": "Claude Code",
        "family": "anthropic",
        "model": "databricks-claude-opus-4-6",
        "tracing": {"available": True, "wanted": False, "on": False, "experiment": "", "reason": ""},
    }
    assert body["agents"]["opencode"]["tracing"] == {"available": False}


async def test_models_the_ai_gateway_offers_are_listed_too(
    apps_gateway: Gateway, workspace: FakeWorkspace
) -> None:
    # The model proxy found the workspace's AI Gateway and wrote what it lists (its status file).
    await wait_ready(apps_gateway)
    workspace.endpoints = [
        {"name": "databricks-claude-sonnet-4-6", "task": "llm/v1/chat", "state": {"ready": "READY"}}
    ]
    status = apps_gateway.ctx.settings.state_dir / "model-proxy" / "status.json"
    offered = ["databricks-claude-opus-4-7", "databricks-claude-sonnet-4-6"]
    upstream = {"via": "gateway", "gateway_models": offered}
    state.atomic_write_json(status, {"upstream": upstream})
    body = json.loads((await apps_gateway.fetch("/api/models", auth=False, headers=OWNER)).body)
    assert body["families"]["anthropic"] == ["databricks-claude-opus-4-7", "databricks-claude-sonnet-4-6"]
    # Not while requests go to serving endpoints: those models would not answer there.
    state.atomic_write_json(status, {"upstream": {**upstream, "via": "serving"}})
    body = json.loads((await apps_gateway.fetch("/api/models", auth=False, headers=OWNER)).body)
    assert body["families"]["anthropic"] == ["databricks-claude-sonnet-4-6"]


async def test_choosing_a_model_rewrites_the_agents_config(apps_gateway: Gateway) -> None:
    await wait_ready(apps_gateway)
    headers = {**OWNER, "Origin": apps_gateway.url}
    choice = json.dumps({"model": "databricks-claude-sonnet-4-6"})
    response = await apps_gateway.fetch(
        "/api/agents/claude/model", "PUT", auth=False, headers=headers, body=choice
    )
    assert response.code == 200, response.body
    settings = apps_gateway.ctx.settings
    env = json.loads((settings.home / ".claude" / "settings.json").read_text())["env"]
    assert env["ANTHROPIC_MODEL"] == "databricks-claude-sonnet-4-6"
    assert state.read_json(settings.state_dir / "models.json") == {"claude": "databricks-claude-sonnet-4-6"}
    listed = json.loads((await apps_gateway.fetch("/api/models", auth=False, headers=OWNER)).body)
    assert listed["agents"]["claude"]["model"] == "databricks-claude-sonnet-4-6"
    bad = await apps_gateway.fetch(
        "/api/agents/claude/model", "PUT", auth=False, headers=headers, body=b'{"model": "a b"}'
    )
    assert bad.code == 400
    unknown = await apps_gateway.fetch(
        "/api/agents/nope/model", "PUT", auth=False, headers=headers, body=choice
    )
    assert unknown.code == 404


async def test_without_a_workspace_models_is_a_clear_503(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/models")
    assert response.code == 503 and "DATABRICKS_HOST is not set" in json.loads(response.body)["error"]


async def test_model_proxy_status_is_served_to_the_owner(gateway: Gateway) -> None:
    assert (await gateway.fetch("/api/model-proxy")).code == 503
    path = gateway.ctx.settings.state_dir / "model-proxy" / "status.json"
    state.atomic_write_json(path, {"agents": {"claude": {"requests": 3}}})
    response = await gateway.fetch("/api/model-proxy")
    assert json.loads(response.body)["agents"]["claude"]["requests"] == 3
    assert (await gateway.fetch("/api/model-proxy", auth=False)).code == 401


async def test_a_config_that_cannot_be_rewritten_is_a_clear_error(apps_gateway: Gateway) -> None:
    # The configurer runs in its own process (services.setup.configure); its reason reaches the page.
    await wait_ready(apps_gateway)
    settings = apps_gateway.ctx.settings
    (settings.home / ".claude").mkdir(parents=True, exist_ok=True)
    (settings.home / ".claude" / "settings.json").write_text("{not json")
    headers = {**OWNER, "Origin": apps_gateway.url}
    response = await apps_gateway.fetch(
        "/api/agents/claude/model", "PUT", auth=False, headers=headers, body=b'{"model": "databricks-x"}'
    )
    assert response.code == 500
    error = json.loads(response.body)["error"]
    assert "Claude Code: the choice is saved but its config was not rewritten" in error
    assert "settings.json is not valid JSON" in error
    assert (settings.home / ".claude" / "settings.json").read_text() == "{not json"
    assert state.read_json(settings.files.agent_models) == {"claude": "databricks-x"}


async def test_switching_tracing_on_and_off_from_the_page(
    apps_gateway: Gateway, workspace: FakeWorkspace
) -> None:
    # As the owner (the deploy's PAT here): the experiment is created in the owner's folder.
    await wait_ready(apps_gateway)
    headers = {**OWNER, "Origin": apps_gateway.url}
    settings = apps_gateway.ctx.settings
    response = await apps_gateway.fetch(
        "/api/agents/claude/tracing", "PUT", auth=False, headers=headers, body=b'{"on": true}'
    )
    assert response.code == 200, response.body
    tracing = json.loads(response.body)["tracing"]
    experiment = f"/Users/{OWNER_EMAIL}/coding-agents"
    assert tracing == {"available": True, "wanted": True, "on": True, "experiment": experiment, "reason": ""}
    assert workspace.mlflow.by_name(experiment) is not None
    claude = json.loads((settings.home / ".claude" / "settings.json").read_text())
    assert claude["env"]["MLFLOW_TRACKING_URI"] == "databricks" and claude["hooks"]["Stop"]
    listed = json.loads((await apps_gateway.fetch("/api/models", auth=False, headers=OWNER)).body)
    assert listed["agents"]["claude"]["tracing"]["on"] is True

    response = await apps_gateway.fetch(
        "/api/agents/claude/tracing", "PUT", auth=False, headers=headers, body=b'{"on": false}'
    )
    assert json.loads(response.body)["tracing"]["on"] is False
    claude = json.loads((settings.home / ".claude" / "settings.json").read_text())
    assert "hooks" not in claude and "MLFLOW_TRACKING_URI" not in claude["env"]

    for path, body, code in (
        ("/api/agents/claude/tracing", b'{"on": "yes"}', 400),
        ("/api/agents/opencode/tracing", b'{"on": true}', 409),
        ("/api/agents/nope/tracing", b'{"on": true}', 404),
    ):
        answer = await apps_gateway.fetch(path, "PUT", auth=False, headers=headers, body=body)
        assert answer.code == code, (path, answer.body)


async def test_tracing_that_cannot_start_says_why(apps_gateway: Gateway, workspace: FakeWorkspace) -> None:
    await wait_ready(apps_gateway)
    workspace.refusals.append(
        ("POST", "/mlflow/experiments/create", 403, "PERMISSION_DENIED", "no MLflow here")
    )
    headers = {**OWNER, "Origin": apps_gateway.url}
    response = await apps_gateway.fetch(
        "/api/agents/claude/tracing", "PUT", auth=False, headers=headers, body=b'{"on": true}'
    )
    assert response.code == 200, response.body
    tracing = json.loads(response.body)["tracing"]
    assert tracing["wanted"] is True and tracing["on"] is False
    assert "no MLflow here" in tracing["reason"] and "PERMISSION_DENIED" in tracing["reason"]
