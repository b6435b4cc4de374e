"""What every fake Databricks API shares: reading a JSON body, and workspace paths in either form."""

from __future__ import annotations

import json
from typing import Any


def json_body(body: bytes) -> dict[str, Any]:
    """The request's JSON object; {} for an empty, malformed or non-object body."""
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def workspace_path(path: str) -> str:
    """The workspace API accepts both /Users/... and /Workspace/Users/...: one form for lookups."""
    path = "/" + path.strip("/")
    return path[len("/Workspace") :] or "/" if path.startswith("/Workspace/") else path
