"""The owner's current token on disk ($STATE/secrets, 0600); services.credentials.profile puts it
in ~/.databrickscfg. Imports nothing that talks to the workspace (services.databricks reads it).

Every process reads it from here on each use, so a pasted or renewed token reaches the sync and the
shells' CLI without a restart. A token past its expiry is never handed out.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services import redact, state
from services.config import Settings


@dataclass(frozen=True)
class StoredToken:
    token: str = field(repr=False)
    source: str  # pasted | renewed | restored
    token_id: str = ""  # set only for tokens the app minted: the only ones it ever revokes
    expires_at: float | None = None  # time.time(); None: unknown (a pasted token)
    saved_at: float = 0.0
    renewable: bool = True  # False once the workspace refused to mint a successor

    @property
    def minted(self) -> bool:
        return bool(self.token_id)

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> StoredToken:
        if not isinstance(data, dict) or not isinstance(data.get("token"), str) or not data["token"]:
            raise ValueError("not a stored token")
        expires = data.get("expires_at")
        return cls(
            token=data["token"],
            source=str(data.get("source", "")),
            token_id=str(data.get("token_id", "")),
            expires_at=float(expires) if isinstance(expires, int | float) else None,
            saved_at=float(data.get("saved_at", 0) or 0),
            renewable=bool(data.get("renewable", True)),
        )


def token_path(settings: Settings) -> Path:
    return settings.files.owner_token


def load(settings: Settings) -> StoredToken | None:
    try:
        stored = StoredToken.from_json(json.loads(token_path(settings).read_bytes()))
    except (OSError, ValueError):
        return None
    redact.hide(stored.token)
    return stored


def save(settings: Settings, stored: StoredToken) -> None:
    redact.hide(stored.token)
    state.ensure_dir(token_path(settings).parent)
    state.atomic_write_json(token_path(settings), stored.to_json(), mode=0o600)


def clear(settings: Settings) -> None:
    token_path(settings).unlink(missing_ok=True)


def owner_token(settings: Settings) -> str:
    """The token acting as the owner now: the deploy's DATABRICKS_TOKEN, else the stored one unless
    it has expired; "" when there is none."""
    if settings.databricks_token:
        return settings.databricks_token
    stored = load(settings)
    return stored.token if stored is not None and not stored.expired() else ""


def has_owner_token(settings: Settings) -> bool:
    return bool(settings.databricks_host and owner_token(settings))
