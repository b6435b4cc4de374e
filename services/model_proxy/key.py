"""The key agents present to the model proxy: a local secret (0600 in the state dir), never a
Databricks credential. Kept apart from the proxy so the setup runner can read it without importing
the proxy's dependencies."""

from __future__ import annotations

from services import state
from services.config import Settings


def proxy_key(settings: Settings) -> str:
    return state.secret_file(settings.files.model_proxy_key)
