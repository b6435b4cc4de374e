"""Workspace errors in plain words: which step, what the workspace said, and what to do about it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from databricks.sdk import errors
from databricks.sdk.errors.base import DatabricksError

from services.deploy.progress import DeployError

# Hints that fit any call; a step passes its own for the cases it knows better (403 on a scope, ...).
DEFAULT_HINTS: dict[type[Exception], str] = {
    errors.Unauthenticated: "the workspace refused the credentials: check DATABRICKS_TOKEN (it may have "
    "expired) or the --profile entry in ~/.databrickscfg",
    errors.PermissionDenied: "your user lacks a permission this step needs; a workspace admin can grant it",
    errors.TooManyRequests: "the workspace is throttling requests; run the same command again in a minute",
    errors.InternalError: "the workspace failed on its side; run the same command again (it resumes)",
    errors.TemporarilyUnavailable: "the workspace is temporarily unavailable; run the same command again",
}


def describe(exc: BaseException) -> str:
    """The workspace's own message with its error code, never request data (which may hold the token)."""
    if isinstance(exc, DatabricksError):
        code = exc.error_code or type(exc).__name__
        # The SDK appends "Config: host=..., token=***, ..." to auth errors; step 1 already named both.
        message = str(exc).split(" Config: ", 1)[0].strip() or "no message"
        return f"{message} [{code}]"
    if isinstance(exc, OSError):
        # requests' errors are OSErrors; their text names the URL and the socket error, never headers.
        return f"cannot reach the workspace: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def hint_for(exc: BaseException, hints: Mapping[type[Exception], str]) -> str:
    for table in (hints, DEFAULT_HINTS):
        for kind, hint in table.items():
            if isinstance(exc, kind):
                return hint
    if isinstance(exc, OSError):
        return "check DATABRICKS_HOST (or the profile's host) and your network connection"
    return ""


@contextlib.contextmanager
def api_step(step: str, action: str, hints: Mapping[type[Exception], str] | None = None) -> Iterator[None]:
    """Turn an SDK or network error inside the block into a DeployError naming the step and action."""
    try:
        yield
    except DeployError:
        raise
    except (DatabricksError, OSError) as exc:
        raise DeployError(step, f"{action}: {describe(exc)}", hint_for(exc, hints or {})) from exc
