"""The one way every process talks to the workspace: databricks-sdk clients and the app's owner.

Databricks Apps injects the app's service-principal client id/secret next to the owner's PAT, and
the SDK refuses mixed credentials; clients here always name their auth type, so each acts as exactly
one identity.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services import state, workspace_errors
from services.config import Settings

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

# A slow or unreachable workspace must surface as an error quickly, not after the SDK's 5-minute
# default retry window: callers retry on their own schedule and show the reason meanwhile.
DEFAULT_TIMEOUT_SECONDS = 4


class _HostMetadataNoise(logging.Filter):
    """The SDK probes /.well-known/databricks-config on every client and warns when it is absent,
    which workspaces without unified hosts answer with 404: one line per call, telling nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "host metadata" not in record.getMessage()


logging.getLogger("databricks.sdk").addFilter(_HostMetadataNoise())


class WorkspaceUnavailable(Exception):
    """The workspace could not answer who we are; the message is safe to show the user."""


@dataclass(frozen=True)
class Owner:
    """The one person this app serves."""

    email: str
    display_name: str
    source: str  # where the identity came from, for status pages and logs

    @property
    def key(self) -> str:
        """E-mail addresses compare case-insensitively (IdPs and SCIM disagree on case)."""
        return self.email.strip().lower()

    def to_json(self) -> dict[str, str]:
        return {"email": self.email, "display_name": self.display_name, "source": self.source}


def pat_client(
    host: str, token: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, http_timeout: float | None = None
) -> WorkspaceClient:
    """A client acting as the owner of `token`, whatever else the environment holds.

    `timeout` bounds the SDK's own retrying; `http_timeout` (default: the same) one HTTP call, which
    for a 10 MB upload must be longer than the time the caller lets the SDK retry.
    """
    # databricks-sdk costs ~1.5 s and ~50 MB to import: processes that may never call the workspace
    # (the gateway in local mode) must not pay for it at start.
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    config = Config(
        host=host,
        token=token,
        auth_type="pat",
        retry_timeout_seconds=timeout,
        http_timeout_seconds=timeout if http_timeout is None else http_timeout,
    )
    return WorkspaceClient(config=config)


def owner_client(settings: Settings, timeout: int = DEFAULT_TIMEOUT_SECONDS) -> WorkspaceClient:
    if not settings.databricks_host:
        raise WorkspaceUnavailable("DATABRICKS_HOST is not set")
    from services.credentials.store import owner_token

    token = owner_token(settings)  # the deploy's PAT, else the one connected in the page
    if not token:
        raise WorkspaceUnavailable(
            "no token of the owner: connect your workspace in the page (or set DATABRICKS_TOKEN)"
        )
    return pat_client(settings.databricks_host, token, timeout)


def scim_email(user: Any) -> str:
    if user.user_name and "@" in user.user_name:
        return str(user.user_name)
    for email in user.emails or []:
        if email.primary and email.value:
            return str(email.value)
    for email in user.emails or []:
        if email.value:
            return str(email.value)
    return str(user.user_name or "")


def describe_error(exc: BaseException) -> str:
    """One line for a user: the workspace's own message when it gave one, else the exception."""
    from databricks.sdk.errors.base import DatabricksError

    if isinstance(exc, DatabricksError):
        code = f" ({exc.error_code})" if getattr(exc, "error_code", None) else ""
        return f"{exc}{code}".strip()
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def lookup_owner(settings: Settings, timeout: int = DEFAULT_TIMEOUT_SECONDS) -> Owner:
    """CODING_AGENTS_OWNER if set, else the user behind DATABRICKS_TOKEN (SCIM Me), else (no PAT at
    deploy) the app's creator, asked with the app's own service principal.

    Raises WorkspaceUnavailable with the reason when none is available.
    """
    if settings.owner_override:
        name = settings.owner_override.split("@", 1)[0]
        return Owner(settings.owner_override, name, "CODING_AGENTS_OWNER")
    if not settings.databricks_token and settings.app_name:
        return app_creator(settings, timeout)
    client = owner_client(settings, timeout)
    try:
        me = client.current_user.me()
    except Exception as exc:  # any failure (network, 401, bad JSON) means: owner unknown
        host = settings.databricks_host
        reason = workspace_errors.explain(exc, host, timeout)
        raise WorkspaceUnavailable(
            reason or f"cannot ask {host} who owns DATABRICKS_TOKEN: {describe_error(exc)}"
        ) from exc
    email = scim_email(me)
    if "@" not in email:
        raise WorkspaceUnavailable(
            f"DATABRICKS_TOKEN belongs to {email or 'an identity'} without an e-mail address "
            "(a service principal?): use a user's PAT or set CODING_AGENTS_OWNER"
        )
    return Owner(email, str(me.display_name or email.split("@", 1)[0]), "DATABRICKS_TOKEN")


CREATOR_SOURCE = "the app's creator (apps.get with the app's service principal)"


def sp_client(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> WorkspaceClient:
    """A client acting as the app's service principal (OAuth M2M, Databricks Apps injects both)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    if not settings.databricks_host:
        raise WorkspaceUnavailable("DATABRICKS_HOST is not set")
    if not (settings.client_id and settings.client_secret):
        raise WorkspaceUnavailable(
            "neither CODING_AGENTS_OWNER, DATABRICKS_TOKEN nor the app's DATABRICKS_CLIENT_ID/SECRET is set"
        )
    config = Config(
        host=settings.databricks_host,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        auth_type="oauth-m2m",
        retry_timeout_seconds=timeout,
        http_timeout_seconds=timeout,
    )
    return WorkspaceClient(config=config)


def app_creator(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Owner:
    """The creator of DATABRICKS_APP_NAME, or WorkspaceUnavailable with the reason."""
    if not settings.app_name:
        raise WorkspaceUnavailable("DATABRICKS_APP_NAME is not set: no app whose creator owns it")
    try:
        app = sp_client(settings, timeout).apps.get(settings.app_name)
    except WorkspaceUnavailable:
        raise
    except Exception as exc:
        host = settings.databricks_host
        reason = workspace_errors.explain(exc, host, timeout)
        raise WorkspaceUnavailable(
            reason or f"cannot ask {host} who created app {settings.app_name}: {describe_error(exc)}"
        ) from exc
    creator = str(app.creator or "").strip()
    if "@" not in creator:
        raise WorkspaceUnavailable(
            f"app {settings.app_name}'s creator is {creator or 'unknown'}, not a user with an e-mail "
            "address: set CODING_AGENTS_OWNER"
        )
    return Owner(creator, creator.split("@", 1)[0], CREATOR_SOURCE)


def save_owner(settings: Settings, owner: Owner) -> None:
    """Publish the owner for other processes (setup, sync); holds no secret."""
    state.atomic_write_json(settings.files.owner, {**owner.to_json(), "resolved_at": time.time()}, mode=0o644)


def load_owner(settings: Settings) -> Owner | None:
    path = settings.files.owner
    try:
        data = state.read_json(path)
        return Owner(str(data["email"]), str(data["display_name"]), str(data["source"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
