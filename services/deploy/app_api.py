"""The app, its token secret and its deployment, through databricks-sdk's apps and secrets APIs.

Every call is idempotent: an existing app is reused (started if stopped), an existing scope is checked
rather than recreated, the secret resource is written only when missing or different.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceConflict,
    ResourceExhausted,
)
from databricks.sdk.service.apps import (
    App,
    AppDeployment,
    AppDeploymentMode,
    AppDeploymentState,
    ApplicationState,
    AppResource,
    AppResourceSecret,
    AppResourceSecretSecretPermission,
    ComputeState,
)
from databricks.sdk.service.workspace import AclPermission

from services.deploy.errors import api_step
from services.deploy.progress import DeployError, Progress, UsageError

# The key app.yaml.template's `valueFrom: "databricks-token"` reads, and the secret's key in its scope.
TOKEN_RESOURCE = "databricks-token"
TOKEN_KEY = "databricks-token"
# Apps: "only lowercase alphanumeric characters and hyphens" (SDK docs of App.name); the length limit
# is left to the workspace, whose message is shown with NAME_HINT.
APP_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
NAME_HINT = "app names are lower-case letters, digits and hyphens, at most 30 characters, and unique"
# Secret scope names: letters, digits, '-', '_', '.', at most 128 characters (Secrets API docs).
SCOPE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
APP_HINTS: dict[type[Exception], str] = {
    PermissionDenied: "creating and deploying apps needs CAN MANAGE on the app (or the workspace's "
    "permission to create apps): ask a workspace admin",
    ResourceExhausted: "the workspace has as many apps as it allows: delete one you no longer use",
    BadRequest: NAME_HINT,
}
DESCRIPTION = "Coding agents in a browser terminal (scripts/deploy)"
T = TypeVar("T")


def check_app_name(name: str) -> str:
    if not APP_NAME.fullmatch(name):
        raise UsageError(f"invalid app name {name!r}", NAME_HINT)
    return name


def check_scope_name(name: str) -> str:
    if not SCOPE_NAME.fullmatch(name):
        raise UsageError(f"invalid secret scope name {name!r}", "use letters, digits, '-', '_' and '.'")
    return name


def default_scope(app: str) -> str:
    return f"{app}-secrets"


@dataclass
class Waiter:
    """Polls a state until it is done or failed, printing each new state once."""

    progress: Progress
    step: str
    poll_seconds: float
    timeout_seconds: float

    def until(
        self,
        what: str,
        read: Callable[[], T],
        state: Callable[[T], str],
        done: Callable[[T], bool],
        failure: Callable[[T], str | None],
        hint: str = "",
    ) -> T:
        deadline = time.monotonic() + self.timeout_seconds
        shown = ""
        while True:
            with api_step(self.step, f"checking {what}"):
                current = read()
            if (text := state(current)) != shown:
                self.progress.line(f"{what}: {text}")
                shown = text
            if done(current):
                return current
            if problem := failure(current):
                raise DeployError(self.step, f"{what}: {problem}", hint)
            if time.monotonic() > deadline:
                raise DeployError(
                    self.step,
                    f"{what} still '{shown}' after {self.timeout_seconds:.0f}s",
                    "run the same command again later; it resumes",
                )
            time.sleep(self.poll_seconds)


def _compute(app: App) -> ComputeState | None:
    return app.compute_status.state if app.compute_status else None


def _status_text(state: object, message: str | None) -> str:
    name = getattr(state, "value", None) or "unknown"
    return f"{name}" + (f" ({message})" if message else "")


def ensure_app(w: WorkspaceClient, name: str, waiter: Waiter) -> App:
    """The app, created if missing; its compute started if stopped, waited for until ACTIVE."""
    step = waiter.step
    try:
        with api_step(step, f"looking up app {name}", APP_HINTS):
            app = w.apps.get(name)
        waiter.progress.line(f"app {name} exists (created by {app.creator or 'unknown'}); reusing it")
    except DeployError as exc:
        if not isinstance(exc.__cause__, NotFound):
            raise
        with api_step(step, f"creating app {name}", APP_HINTS):
            created: App | None = w.apps.create(App(name=name, description=DESCRIPTION)).response
        waiter.progress.line(f"created app {name}")
        app = created or App(name=name)
    if _compute(app) in (ComputeState.STOPPED, ComputeState.ERROR, None):
        with api_step(step, f"starting app {name}", APP_HINTS):
            w.apps.start(name)
        waiter.progress.line(f"starting the app's compute (it was {_status_text(_compute(app), None)})")
    return waiter.until(
        f"app {name} compute",
        lambda: w.apps.get(name),
        lambda a: _status_text(_compute(a), a.compute_status.message if a.compute_status else None),
        lambda a: _compute(a) == ComputeState.ACTIVE,
        lambda a: (
            _status_text(_compute(a), a.compute_status.message if a.compute_status else None)
            if _compute(a) in (ComputeState.ERROR, ComputeState.STOPPED, ComputeState.DELETING)
            else None
        ),
        "open the app's page in the workspace (Compute > Apps) for details",
    )


def ensure_secret(w: WorkspaceClient, scope: str, token: str, me: str, progress: Progress) -> None:
    """Put the token in scope/TOKEN_KEY, creating the scope if missing. The token is never printed."""
    step = "secret"
    with api_step(step, "listing secret scopes"):
        exists = any(s.name == scope for s in w.secrets.list_scopes())
    if not exists:
        try:
            with api_step(step, f"creating secret scope {scope}"):
                w.secrets.create_scope(scope)
            progress.line(f"created secret scope {scope}")
        except DeployError as exc:
            if not isinstance(exc.__cause__, ResourceAlreadyExists):  # made meanwhile: check it below
                raise
            exists = True
    if exists:
        _check_scope_is_yours(w, scope, me)
        progress.line(f"secret scope {scope} exists and you can manage it")
    mine: dict[type[Exception], str] = {
        PermissionDenied: f"you may not write to secret scope {scope}: ask its owner for MANAGE, or pick "
        "another scope with --secret-scope"
    }
    # Put every time: whether the value changed cannot be known, since the Secrets API returns a value
    # only to DBUtils on a cluster (SDK docs of secrets.get_secret). A put of the same value is harmless.
    with api_step(step, f"storing the token in {scope}/{TOKEN_KEY}", mine):
        w.secrets.put_secret(scope, TOKEN_KEY, string_value=token)
    progress.line(f"stored your token as {scope}/{TOKEN_KEY}")


def _check_scope_is_yours(w: WorkspaceClient, scope: str, me: str) -> None:
    """Granting the app READ needs MANAGE on the scope; say so before anything is written."""
    not_yours = (
        f"secret scope {scope} exists but is not yours: pick another with --secret-scope, or ask its "
        "owner for MANAGE on it"
    )
    try:
        with api_step("secret", f"reading your permission on secret scope {scope}"):
            acl = w.secrets.get_acl(scope, me)
    except DeployError as exc:
        if isinstance(exc.__cause__, NotFound):
            return  # no ACL naming you: rights through a group or as an admin; the put will tell
        if isinstance(exc.__cause__, PermissionDenied):
            raise DeployError("secret", exc.what, not_yours) from exc.__cause__
        raise
    if acl.permission != AclPermission.MANAGE:
        permission = acl.permission.value if acl.permission else "no"
        raise DeployError("secret", f"you have {permission} permission on secret scope {scope}", not_yours)


def attach_secret(w: WorkspaceClient, app: App, scope: str, progress: Progress) -> App:
    """Make the app's TOKEN_RESOURCE resource the READ-only secret scope/TOKEN_KEY."""
    wanted = AppResourceSecret(scope=scope, key=TOKEN_KEY, permission=AppResourceSecretSecretPermission.READ)
    current = app.resources or []
    existing = next((r for r in current if r.name == TOKEN_RESOURCE), None)
    if existing is not None and existing.secret == wanted:
        progress.line(f"app resource {TOKEN_RESOURCE} already reads {scope}/{TOKEN_KEY}")
        return app
    resources = [r for r in current if r.name != TOKEN_RESOURCE] + [
        AppResource(name=TOKEN_RESOURCE, description="The owner's token (scripts/deploy)", secret=wanted)
    ]
    needs = f"CAN MANAGE on app {app.name} and MANAGE on secret scope {scope}"
    updated = _update_resources(w, app, resources, f"adding resource {TOKEN_RESOURCE} to", needs)
    progress.line(f"app resource {TOKEN_RESOURCE} now reads {scope}/{TOKEN_KEY} (READ)")
    return updated


def _update_resources(
    w: WorkspaceClient, app: App, resources: list[AppResource], doing: str, needs: str
) -> App:
    """apps.update with `resources`: it replaces the whole app (SDK docs), so the app as read goes back."""
    app.resources = resources
    hints: dict[type[Exception], str] = {
        PermissionDenied: f"this needs {needs}",
        ResourceConflict: "the app is being changed by someone else; run the same command again",
    }
    with api_step("secret", f"{doing} app {app.name}", hints):
        return w.apps.update(app.name, app)


def detach_secret(w: WorkspaceClient, app: App, progress: Progress) -> App:
    """Remove the TOKEN_RESOURCE resource an earlier deploy attached (--no-token): no secret at all."""
    current = app.resources or []
    if not any(r.name == TOKEN_RESOURCE for r in current):
        progress.line(f"app {app.name} has no {TOKEN_RESOURCE} resource")
        return app
    resources = [r for r in current if r.name != TOKEN_RESOURCE]
    doing = f"removing resource {TOKEN_RESOURCE} from"
    updated = _update_resources(w, app, resources, doing, f"CAN MANAGE on app {app.name}")
    progress.line(f"app resource {TOKEN_RESOURCE} removed (the secret itself is left in its scope)")
    return updated


def _deployment_text(d: AppDeployment) -> str:
    return _status_text(d.status.state if d.status else None, d.status.message if d.status else None)


def _wait_for_running_deployments(w: WorkspaceClient, app: App, waiter: Waiter) -> None:
    for label, deployment in (("active", app.active_deployment), ("pending", app.pending_deployment)):
        if deployment is None or deployment.status is None or not deployment.deployment_id:
            continue
        if deployment.status.state != AppDeploymentState.IN_PROGRESS:
            continue
        deployment_id = deployment.deployment_id
        waiter.until(
            f"earlier {label} deployment {deployment_id}",
            functools.partial(w.apps.get_deployment, app.name, deployment_id),
            _deployment_text,
            lambda d: d.status is not None and d.status.state != AppDeploymentState.IN_PROGRESS,
            lambda d: None,
        )


def deploy(w: WorkspaceClient, app: App, source_path: str, waiter: Waiter) -> App:
    """Deploy source_path and wait until the deployment succeeded and the app runs."""
    name, step = app.name, waiter.step
    _wait_for_running_deployments(w, w.apps.get(name), waiter)
    request = AppDeployment(source_code_path=source_path, mode=AppDeploymentMode.SNAPSHOT)
    deploy_hints = {
        **APP_HINTS,
        BadRequest: "the workspace refused the deployment; its message above says why",
        ResourceConflict: "another deployment is running: run the same command again when it ends",
    }
    with api_step(step, f"deploying {source_path} to app {name}", deploy_hints):
        started: AppDeployment | None = w.apps.deploy(name, request).response
    deployment_id = started.deployment_id if started else None
    if not deployment_id:
        raise DeployError(step, "the workspace accepted the deployment but returned no deployment id")
    waiter.progress.line(f"deployment {deployment_id} started")
    logs = "the app's Logs tab in the workspace (Compute > Apps > " + name + ") shows why"
    waiter.until(
        f"deployment {deployment_id}",
        lambda: w.apps.get_deployment(name, deployment_id),
        _deployment_text,
        lambda d: d.status is not None and d.status.state == AppDeploymentState.SUCCEEDED,
        lambda d: (
            _deployment_text(d)
            if d.status and d.status.state in (AppDeploymentState.FAILED, AppDeploymentState.CANCELLED)
            else None
        ),
        logs,
    )

    def app_state(a: App) -> ApplicationState | None:
        return a.app_status.state if a.app_status else None

    return waiter.until(
        f"app {name}",
        lambda: w.apps.get(name),
        lambda a: _status_text(app_state(a), a.app_status.message if a.app_status else None),
        lambda a: app_state(a) == ApplicationState.RUNNING,
        lambda a: (
            _status_text(app_state(a), a.app_status.message if a.app_status else None)
            if app_state(a) == ApplicationState.CRASHED
            else None
        ),
        logs,
    )
