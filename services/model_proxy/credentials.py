"""The Databricks credential the proxy adds to each request: the owner's PAT, or (PAT-less) an OAuth
token of the app's service principal that databricks-sdk fetches and refreshes before it expires.
The credential lives only in this process; agents never see it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from services.config import Settings

if TYPE_CHECKING:
    from databricks.sdk.config import Config

log = logging.getLogger("model_proxy")


class NoCredential(Exception):
    """Neither a PAT nor service-principal credentials are configured; the message says what to set."""


def make_config(settings: Settings) -> Config:
    # Imported here: databricks-sdk takes ~1.5 CPU-seconds to import, which at start would compete
    # with the terminal for the machine's cores; only the PAT-less (service principal) mode needs it.
    from databricks.sdk.config import Config

    if not settings.databricks_host:
        raise NoCredential("DATABRICKS_HOST is not set: no workspace to send model requests to")
    if settings.client_id and settings.client_secret:
        return Config(
            host=settings.databricks_host,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            auth_type="oauth-m2m",
        )
    raise NoCredential("set DATABRICKS_TOKEN (the owner's PAT) or the app's DATABRICKS_CLIENT_ID/SECRET")


class Credentials:
    """`await headers()` → {"Authorization": "Bearer …"}, current at the time of the call."""

    def __init__(self, settings: Settings, factory: Callable[[Settings], Config] = make_config) -> None:
        self._settings = settings
        self._factory = factory
        self._config: Config | None = None
        self._lock = asyncio.Lock()
        self._static: dict[str, str] | None = None

    @property
    def mode(self) -> str:
        if self._settings.databricks_token:
            return "pat"
        return "oauth-m2m" if self._settings.client_id else "none"

    def _headers(self) -> dict[str, str]:
        if self._settings.databricks_host and self._settings.databricks_token:
            return {"Authorization": f"Bearer {self._settings.databricks_token}"}  # a PAT needs no SDK
        if self._config is None:
            self._config = self._factory(self._settings)
        # The SDK caches the OAuth token and refreshes it shortly before it expires.
        return dict(self._config.authenticate())

    async def headers(self) -> dict[str, str]:
        if self._static is not None:
            return self._static
        async with self._lock:  # one token fetch at a time, not one per concurrent request
            headers = await asyncio.get_running_loop().run_in_executor(None, self._headers)
        if self.mode == "pat":
            self._static = headers  # a PAT does not change while this process lives
        return headers
