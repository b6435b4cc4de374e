"""Connecting the sync to the workspace at start, and saying plainly on the platform log why it cannot.

The coordinator keeps retrying (services.sync.coordinator `_keep_trying`); the platform log gets one
line per distinct reason (with the fix), and one line when it connects after all. Imports no SDK at
load time: the watcher imports this module even without a workspace.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services import databricks, workspace_errors
from services.config import Settings
from services.databricks import DEFAULT_TIMEOUT_SECONDS
from services.platform_log import announce, resolved
from services.sync.failures import Kind, OpFailed
from services.sync.journal import Journal

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from services.sync.remote import Remote

ANNOUNCE_KEY = "sync-workspace"
RETRYING = "the sync keeps retrying and restores ~/projects once it gets through"


@dataclass(frozen=True)
class Connected:
    """What every job after connecting works with; none of it can be missing."""

    journal: Journal
    remote: Remote
    pool: ThreadPoolExecutor  # the workspace calls, `concurrency` at a time
    owner: databricks.Owner

    @property
    def author(self) -> tuple[str, str]:
        """(name, email) for the commits a restore makes."""
        return (self.owner.display_name or self.owner.email, self.owner.email)


def resolve_owner(settings: Settings) -> databricks.Owner:
    if settings.owner_override:
        return databricks.lookup_owner(settings)
    # The gateway publishes the owner it looked up (Apps mode); ask SCIM ourselves otherwise.
    return databricks.load_owner(settings) or databricks.lookup_owner(settings)


def reach(settings: Settings, http_timeout: float) -> tuple[databricks.Owner, WorkspaceClient]:
    """One try at the owner and a client acting as them (raises what the workspace said)."""
    # Only now, with a workspace configured: importing databricks-sdk takes ~1.5 CPU-seconds.
    from services.sync.remote import workspace_client

    return resolve_owner(settings), workspace_client(settings, http_timeout)


def remote_root(owner: databricks.Owner) -> str:
    return f"/Users/{owner.email}/projects"


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _refused(exc: BaseException) -> bool:
    """The workspace said who we are is not allowed (401/403), as opposed to not answering."""
    if isinstance(exc, OpFailed):
        return exc.failure.kind is Kind.AUTH
    from databricks.sdk.errors import PermissionDenied, Unauthenticated

    return isinstance(_root_cause(exc), Unauthenticated | PermissionDenied)


def explain(settings: Settings, message: str, exc: BaseException, root: str = "") -> tuple[str, str]:
    """(what, fix) for the platform log."""
    host = settings.databricks_host
    if root and _refused(exc):
        return (
            f"sync cannot create or read /Workspace{root}: {message}",
            "the token's owner needs write access to that folder (fix its permissions, or create it, in "
            f"the workspace); {RETRYING}",
        )
    if _refused(exc):
        return (
            f"sync: the workspace {host} refused the owner's token: {message}",
            "connect your workspace again in the app's page (README, Connect your workspace), or put a "
            f"valid personal access token in the app's secret and restart the app; {RETRYING}",
        )
    # The SDK reports most network failures as "Timed out after …": name the cause under it.
    message = workspace_errors.explain(exc, host, DEFAULT_TIMEOUT_SECONDS) or message
    return (
        f"sync cannot reach the workspace {host}: {message}",
        f"check DATABRICKS_HOST in app.yaml and that the app can reach the workspace; {RETRYING}",
    )


def announce_failure(settings: Settings, message: str, exc: BaseException, root: str = "") -> None:
    what, fix = explain(settings, message, exc, root)
    announce(what, fix, key=ANNOUNCE_KEY)


def announce_connected(settings: Settings, root: str) -> None:
    resolved(
        ANNOUNCE_KEY,
        f"sync connected to {settings.databricks_host}: mirroring ~/projects to /Workspace{root}",
    )


def list_root(remote: Remote) -> list[tuple[str, bool, int]]:
    """The workspace folder's children, creating the folder when it is missing, so that a folder we
    may not create fails here, at start, rather than at the first commit."""
    listing = remote.list_dir(remote.root)
    if listing is None:
        remote.mkdirs(remote.root)
        return []
    return listing


def describe_listing(remote: Remote) -> Callable[[BaseException], str]:
    return lambda exc: f"cannot list or create {remote.root}: {exc}"
