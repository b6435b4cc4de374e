"""Who the owner is without a PAT (the app's creator, asked with the app's own service principal),
and whose a pasted token is (SCIM Me with that token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from services import workspace_errors
from services.config import Settings
from services.databricks import (
    DEFAULT_TIMEOUT_SECONDS,
    Owner,
    WorkspaceUnavailable,
    describe_error,
    pat_client,
    scim_email,
)

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

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


def reading_client(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> WorkspaceClient:
    """The owner's client, else (no token connected yet) the app's service principal's, which the
    models use too: what serving endpoints exist is the same question for both."""
    from services.databricks import owner_client

    try:
        return owner_client(settings, int(timeout))
    except WorkspaceUnavailable:
        if not (settings.apps_mode and settings.client_id and settings.client_secret):
            raise
    return sp_client(settings, timeout)


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


@dataclass(frozen=True)
class TokenUser:
    email: str
    display_name: str


class TokenRefused(Exception):
    """The workspace refused the token, or it belongs to someone else; the message says which."""


def token_user(settings: Settings, token: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> TokenUser:
    """Whose token this is (SCIM Me). TokenRefused when the workspace rejects it,
    WorkspaceUnavailable when the workspace does not answer."""
    from databricks.sdk.errors import PermissionDenied, Unauthenticated

    try:
        me = pat_client(settings.databricks_host, token, timeout).current_user.me()
    except (Unauthenticated, PermissionDenied) as exc:
        raise TokenRefused(f"the workspace refused this token: {describe_error(exc)}") from None
    except Exception as exc:
        reason = workspace_errors.explain(exc, settings.databricks_host, timeout)
        raise WorkspaceUnavailable(reason or f"cannot check the token: {describe_error(exc)}") from None
    email = scim_email(me)
    return TokenUser(email, str(me.display_name or email.split("@", 1)[0]))
