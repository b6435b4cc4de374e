"""The owner's current token kept across restarts (the disk is wiped): a secret in a scope the app's
service principal creates and owns, written and read with the service principal's own credentials,
so nobody but the app (and workspace admins) can read it back."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from services.config import Settings
from services.credentials.store import StoredToken
from services.databricks import DEFAULT_TIMEOUT_SECONDS, WorkspaceUnavailable, describe_error, sp_client

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

KEY = "owner-token"


class BackupFailed(Exception):
    """The token could not be kept or read back; the message says why (safe to show)."""


def scope_name(settings: Settings) -> str:
    # Distinct from scripts/deploy's "<app>-secrets", which the deployer (a user) owns.
    return f"{settings.app_name or 'coding-agents'}-app-credential"


def _why(exc: BaseException, doing: str, scope: str) -> str:
    from databricks.sdk.errors import PermissionDenied

    if isinstance(exc, PermissionDenied):
        return (
            f"the app's service principal may not {doing} secret scope {scope} ({describe_error(exc)}); "
            "a workspace admin can allow it to create secret scopes"
        )
    return f"cannot {doing} secret scope {scope}: {describe_error(exc)}"


def keep(settings: Settings, stored: StoredToken, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Write the token (with its id and expiry) to the app's secret, creating the scope once."""
    from databricks.sdk.errors import NotFound

    value = json.dumps(stored.to_json())
    try:
        client = sp_client(settings, timeout)
        try:
            client.secrets.put_secret(scope_name(settings), KEY, string_value=value)
            return
        except NotFound:
            _create_scope(client, settings)
        client.secrets.put_secret(scope_name(settings), KEY, string_value=value)
    except WorkspaceUnavailable as exc:
        raise BackupFailed(str(exc)) from None
    except BackupFailed:
        raise
    except Exception as exc:
        raise BackupFailed(_why(exc, "write to", scope_name(settings))) from None


def ensure_scope(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Create the app's scope if missing: at start, so a missing permission shows before a paste."""
    try:
        _create_scope(sp_client(settings, timeout), settings)
    except WorkspaceUnavailable as exc:
        raise BackupFailed(str(exc)) from None


def _create_scope(client: WorkspaceClient, settings: Settings) -> None:
    from databricks.sdk.errors import ResourceAlreadyExists

    scope = scope_name(settings)
    try:
        client.secrets.create_scope(scope)
    except ResourceAlreadyExists:
        return  # created before (an earlier start of this app)
    except Exception as exc:
        raise BackupFailed(_why(exc, "create", scope)) from None


def fetch(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> StoredToken | None:
    """The token kept before the restart; None when there is none."""
    from databricks.sdk.errors import NotFound

    scope = scope_name(settings)
    try:
        secret = sp_client(settings, timeout).secrets.get_secret(scope, KEY)
    except NotFound:
        return None
    except WorkspaceUnavailable as exc:
        raise BackupFailed(str(exc)) from None
    except Exception as exc:
        raise BackupFailed(_why(exc, "read", scope)) from None
    try:
        return StoredToken.from_json(json.loads(base64.b64decode(secret.value or "")))
    except ValueError:
        raise BackupFailed(f"the secret {scope}/{KEY} does not hold a token this app wrote") from None


def forget(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Delete the kept token (it was refused); errors only matter to the log."""
    sp_client(settings, timeout).secrets.delete_secret(scope_name(settings), KEY)
