"""Whose a pasted token is (SCIM Me with that token), and the client that lists what the models
need. The owner without a PAT (the app's creator) is services.databricks.app_creator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from services import workspace_errors
from services.config import Settings
from services.databricks import (
    DEFAULT_TIMEOUT_SECONDS,
    WorkspaceUnavailable,
    describe_error,
    pat_client,
    scim_email,
    sp_client,
)

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient


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
