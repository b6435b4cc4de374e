"""The Apps and Secrets REST APIs of the fake workspace (tests/fake_workspace.py serves them).

Shapes follow databricks-sdk 0.162.0's models (service/apps.py, service/workspace.py) and the error
bodies of the real API ({"error_code", "message"}). Transitional states last `settle_polls` GETs, so a
client must really poll: an app's compute goes STARTING -> ACTIVE, a deployment IN_PROGRESS ->
SUCCEEDED (or FAILED with `fail_deployments`), after which the app is RUNNING.
Error messages whose exact wording is not documented are marked "(wording assumed)".
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fake_workspace import FakeWorkspace, Recorded, _Handler

APP_NAME = re.compile(r"[a-z0-9-]{2,30}")  # App.name docs; the 30-character limit is the Apps UI's
SCOPE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
SETTABLE = ("description", "resources", "user_api_scopes", "budget_policy_id", "compute_size")
WORKSPACE_ID = "1234567890"


@dataclass
class FakeApps:
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by deployment_id
    snapshots: dict[str, dict[str, bytes]] = field(default_factory=dict)  # deployment_id -> files
    scopes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {acls, secrets}
    settle_polls: int = 2
    fail_deployments: str = ""  # a message: every deployment ends FAILED with it
    polls: dict[str, int] = field(default_factory=dict)

    def add_scope(self, name: str, owner: str) -> None:
        self.scopes[name] = {"acls": {owner: "MANAGE"}, "secrets": {}}


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error_code": code, "message": message}


def _caller(h: _Handler) -> str:
    return h.user.email if h.user else ""


def _settled(state: FakeApps, key: str) -> bool:
    """True once `key` has been polled settle_polls times (each call counts one poll)."""
    state.polls[key] = state.polls.get(key, 0) + 1
    return state.polls[key] > state.settle_polls


def _app_view(state: FakeApps, app: dict[str, Any], poll: bool = False) -> dict[str, Any]:
    """The app as the API shows it; a poll (a GET) may move its compute on."""
    name = app["name"]
    if poll and app["compute_status"]["state"] == "STARTING" and _settled(state, f"compute:{name}"):
        app["compute_status"] = {"state": "ACTIVE", "message": "App compute is active."}
    for key in ("pending_deployment", "active_deployment"):
        if key in app:
            app[key] = _deployment_view(state, state.deployments[app[key]["deployment_id"]], name, poll)
    return {k: v for k, v in app.items() if v is not None}


def _deployment_view(state: FakeApps, dep: dict[str, Any], app_name: str, poll: bool) -> dict[str, Any]:
    settling = dep["status"]["state"] == "IN_PROGRESS"
    if poll and settling and _settled(state, f"deployment:{dep['deployment_id']}"):
        app = state.apps[app_name]
        if state.fail_deployments:
            dep["status"] = {"state": "FAILED", "message": state.fail_deployments}
            app["app_status"] = {"state": "CRASHED", "message": state.fail_deployments}
        else:
            dep["status"] = {"state": "SUCCEEDED", "message": "App started successfully"}
            app["active_deployment"] = dep
            app["app_status"] = {"state": "RUNNING", "message": "App has status: App is running"}
        app.pop("pending_deployment", None)
    return dict(dep)


def _app_or_404(ws: FakeWorkspace, name: str) -> dict[str, Any] | tuple[int, Any]:
    app = ws.apps_api.apps.get(name)
    if app is None:
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"App with name {name} does not exist or is deleted.")
    return app


def _apps_create(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    body = ws_json(req)
    name = str(body.get("name", ""))
    if not APP_NAME.fullmatch(name) or name.startswith("-") or name.endswith("-"):
        return _error(
            400,
            "INVALID_PARAMETER_VALUE",
            f"Invalid app name {name!r}: it must contain only lowercase alphanumeric characters and "
            "hyphens, and be 2 to 30 characters long. (wording assumed)",
        )
    with ws.lock:
        if name in ws.apps_api.apps:
            return _error(409, "RESOURCE_ALREADY_EXISTS", f"An app with name {name} already exists.")
        app: dict[str, Any] = {
            "name": name,
            "id": str(uuid.uuid4()),
            "description": body.get("description"),
            "url": f"https://{name}-{WORKSPACE_ID}.aws.databricksapps.com",
            "creator": _caller(h),
            "create_time": "2026-01-01T00:00:00Z",
            "compute_status": {"state": "STARTING", "message": "App compute is starting."},
            "app_status": {"state": "UNAVAILABLE", "message": "App has not been deployed yet."},
            "service_principal_id": 7000 + len(ws.apps_api.apps),
            "service_principal_client_id": str(uuid.uuid4()),
            "service_principal_name": f"app-{name}",
            "resources": body.get("resources"),
        }
        ws.apps_api.apps[name] = app
        return 200, _app_view(ws.apps_api, app)


def _apps_get(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    with ws.lock:
        app = _app_or_404(ws, match["name"])
        return app if isinstance(app, tuple) else (200, _app_view(ws.apps_api, app, poll=True))


def _apps_update(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    body = ws_json(req)
    with ws.lock:
        app = _app_or_404(ws, match["name"])
        if isinstance(app, tuple):
            return app
        for resource in body.get("resources") or []:
            secret = resource.get("secret")
            if secret and secret.get("scope") not in ws.apps_api.scopes:
                return _error(
                    404, "RESOURCE_DOES_NOT_EXIST", f"Secret scope {secret.get('scope')} does not exist."
                )
        # A full replacement of the settable fields (SDK docs of apps.update): omitted ones are cleared.
        for key in SETTABLE:
            app[key] = body.get(key)
        return 200, _app_view(ws.apps_api, app)


def _apps_start(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    with ws.lock:
        app = _app_or_404(ws, match["name"])
        if isinstance(app, tuple):
            return app
        if app["compute_status"]["state"] in ("STOPPED", "ERROR"):
            app["compute_status"] = {"state": "STARTING", "message": "App compute is starting."}
            ws.apps_api.polls.pop(f"compute:{app['name']}", None)
        return 200, _app_view(ws.apps_api, app)


def _apps_deploy(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    body = ws_json(req)
    path = str(body.get("source_code_path", ""))
    bare = ws_norm(path)
    with ws.lock:
        app = _app_or_404(ws, match["name"])
        if isinstance(app, tuple):
            return app
        if app["compute_status"]["state"] != "ACTIVE":
            state = app["compute_status"]["state"]
            message = f"Cannot deploy app {app['name']} as its compute is {state}. (wording assumed)"
            return _error(400, "INVALID_STATE", message)
        if bare not in ws.dirs:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Source code path {path} does not exist.")
        deployment_id = uuid.uuid4().hex
        prefix = bare.rstrip("/") + "/"
        ws.apps_api.snapshots[deployment_id] = {
            p[len(prefix) :]: data for p, data in ws.files.items() if p.startswith(prefix)
        }
        dep = {
            "deployment_id": deployment_id,
            "source_code_path": path,
            "mode": body.get("mode", "SNAPSHOT"),
            "creator": _caller(h),
            "create_time": "2026-01-01T00:00:00Z",
            "status": {"state": "IN_PROGRESS", "message": "Preparing source code for new app deployment."},
            "deployment_artifacts": {"source_code_path": f"/Workspace/Users/sp/src/{deployment_id}"},
        }
        ws.apps_api.deployments[deployment_id] = dep
        app["pending_deployment"] = dep
        app["app_status"] = {"state": "DEPLOYING", "message": "App is being deployed."}
        return 200, dict(dep)


def _apps_get_deployment(
    h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]
) -> tuple[int, Any]:
    with ws.lock:
        dep = ws.apps_api.deployments.get(match["id"])
        if dep is None or match["name"] not in ws.apps_api.apps:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"App deployment {match['id']} does not exist.")
        return 200, _deployment_view(ws.apps_api, dep, match["name"], poll=True)


# --- secrets -------------------------------------------------------------------------------------


def _scopes_list(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    with ws.lock:
        scopes = [{"name": name, "backend_type": "DATABRICKS"} for name in sorted(ws.apps_api.scopes)]
    return 200, {"scopes": scopes} if scopes else {}


def _scopes_create(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    scope = str(ws_json(req).get("scope", ""))
    if not SCOPE_NAME.fullmatch(scope):
        return _error(400, "INVALID_PARAMETER_VALUE", f"Scope name {scope!r} is invalid. (wording assumed)")
    with ws.lock:
        if scope in ws.apps_api.scopes:
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"Scope {scope} already exists!")
        ws.apps_api.add_scope(scope, _caller(h))
    return 200, {}


def _permission(ws: FakeWorkspace, scope: str, who: str) -> str:
    return str(ws.apps_api.scopes[scope]["acls"].get(who, ""))


def _secrets_put(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    body = ws_json(req)
    scope, key = str(body.get("scope", "")), str(body.get("key", ""))
    with ws.lock:
        if scope not in ws.apps_api.scopes:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")
        if _permission(ws, scope, _caller(h)) not in ("WRITE", "MANAGE"):
            return _error(
                403,
                "PERMISSION_DENIED",
                f"User {_caller(h)} does not have WRITE permission on scope {scope}. (wording assumed)",
            )
        ws.apps_api.scopes[scope]["secrets"][key] = body.get("string_value") or body.get("bytes_value")
    return 200, {}


def _acls_get(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    scope = req.query.get("scope", [""])[0]
    principal = req.query.get("principal", [""])[0]
    with ws.lock:
        if scope not in ws.apps_api.scopes:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")
        if _permission(ws, scope, _caller(h)) != "MANAGE":
            return _error(
                403,
                "PERMISSION_DENIED",
                f"User {_caller(h)} does not have MANAGE permission on scope {scope}. (wording assumed)",
            )
        permission = _permission(ws, scope, principal)
    if not permission:
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Failed to get secret acl for principal {principal}.")
    return 200, {"principal": principal, "permission": permission}


def ws_json(req: Recorded) -> dict[str, Any]:
    try:
        value = json.loads(req.body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def ws_norm(path: str) -> str:
    """The same rule as the workspace routes: /Workspace/Users/... and /Users/... are one path."""
    path = "/" + path.strip("/")
    return path[len("/Workspace") :] or "/" if path.startswith("/Workspace/") else path


NAME = r"(?P<name>[^/]+)"
PATTERN_ROUTES = [
    ("POST", re.compile(r"/api/2\.0/apps"), _apps_create),
    ("GET", re.compile(rf"/api/2\.0/apps/{NAME}"), _apps_get),
    ("PATCH", re.compile(rf"/api/2\.0/apps/{NAME}"), _apps_update),
    ("POST", re.compile(rf"/api/2\.0/apps/{NAME}/start"), _apps_start),
    ("POST", re.compile(rf"/api/2\.0/apps/{NAME}/deployments"), _apps_deploy),
    ("GET", re.compile(rf"/api/2\.0/apps/{NAME}/deployments/(?P<id>[^/]+)"), _apps_get_deployment),
    ("GET", re.compile(r"/api/2\.0/secrets/scopes/list"), _scopes_list),
    ("POST", re.compile(r"/api/2\.0/secrets/scopes/create"), _scopes_create),
    ("POST", re.compile(r"/api/2\.0/secrets/put"), _secrets_put),
    ("GET", re.compile(r"/api/2\.0/secrets/acls/get"), _acls_get),
]
