"""Credentials in the fake workspace (tests/fake_workspace.py serves them): the app's service
principal signing in with OAuth M2M, and the tokens API with real expiry.

Shapes: databricks-apps.md §8 and "Facts checked later" (tokens API), databricks-sdk 0.162.0's
oauth-m2m flow (discovery document -> authorization-server metadata -> client_credentials grant).
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from tests.fake_workspace import FakeWorkspace, Recorded, User, _Handler

WORKSPACE_ID = "1234567890"


@dataclass
class Minted:
    token_id: str
    token: str
    owner: str  # e-mail
    comment: str
    created: float
    expires: float | None


@dataclass
class FakeCredentials:
    service_principals: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (secret, name)
    expiry: dict[str, float] = field(default_factory=dict)  # token -> time.time() it stops working
    minted: dict[str, Minted] = field(default_factory=dict)  # by token_id, tokens/create only
    revoked: list[str] = field(default_factory=list)  # token ids, in order
    history: list[Minted] = field(default_factory=list)  # every token minted, revoked ones too
    max_lifetime: int | None = None  # token/create refuses longer lifetimes (an admin's cap)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def valid(self, token: str, now: float | None = None) -> bool:
        expires = self.expiry.get(token)
        return expires is None or (now or time.time()) < expires


def add_service_principal(ws: FakeWorkspace, client_id: str, secret: str, name: str = "") -> None:
    """The app's SP: M2M sign-in turns on, and it acts as a principal named `client_id`."""
    ws.credentials.service_principals[client_id] = (secret, name or f"app-sp-{client_id}")


def answer_unauthenticated(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any] | None:
    """Discovery and OIDC routes, which need no bearer token; None for every other path."""
    creds = ws.credentials
    if req.path == "/.well-known/databricks-config":
        if not creds.service_principals:
            return 404, {"error_code": "NOT_FOUND", "message": "no discovery document"}
        return 200, {"oidc_endpoint": f"{ws.url}/oidc", "workspace_id": WORKSPACE_ID}
    if req.path == "/oidc/.well-known/oauth-authorization-server":
        return 200, {
            "issuer": f"{ws.url}/oidc",
            "token_endpoint": f"{ws.url}/oidc/v1/token",
            "authorization_endpoint": f"{ws.url}/oidc/v1/authorize",
        }
    if req.path == "/oidc/v1/token" and req.method == "POST":
        return _client_credentials(ws, req)
    return None


def _client_credentials(ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    from tests.fake_workspace import User

    auth = req.headers.get("authorization", "")
    client_id, secret = "", ""
    if auth.lower().startswith("basic "):
        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
    form = parse_qs(req.body.decode())
    client_id = client_id or form.get("client_id", [""])[0]
    secret = secret or form.get("client_secret", [""])[0]
    known = ws.credentials.service_principals.get(client_id)
    if known is None or known[0] != secret:
        return 401, {"error": "invalid_client", "error_description": "bad client credentials"}
    token = f"sp-oauth-{next(ws.credentials._ids)}"
    with ws.lock:
        ws.tokens[token] = User(client_id, known[1], id=f"sp-{client_id}")
    return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error_code": code, "message": message}


def _is_user(user: User | None) -> bool:
    return user is not None and "@" in user.email


def _token_create(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    from tests.fake_apps import ws_json

    if not _is_user(h.user):
        return _error(
            403, "PERMISSION_DENIED", "Only users may create personal access tokens. (wording assumed)"
        )
    assert h.user is not None
    body = ws_json(req)
    lifetime = body.get("lifetime_seconds")
    creds = ws.credentials
    if isinstance(lifetime, int) and creds.max_lifetime is not None and lifetime > creds.max_lifetime:
        return _error(
            400,
            "INVALID_PARAMETER_VALUE",
            f"Lifetime exceeds the maximum of {creds.max_lifetime} seconds. (wording assumed)",
        )
    now = time.time()
    with ws.lock:
        token_id = f"tok-{next(creds._ids)}"
        token = f"dapi-fake-{token_id}-{int(now * 1000) % 100000:05d}"
        expires = now + lifetime if isinstance(lifetime, int) and lifetime > 0 else None
        minted = Minted(token_id, token, h.user.email, str(body.get("comment", "")), now, expires)
        creds.minted[token_id] = minted
        creds.history.append(minted)
        ws.tokens[token] = h.user
        if expires is not None:
            creds.expiry[token] = expires
    info = {
        "token_id": token_id,
        "creation_time": int(now * 1000),
        "expiry_time": int(expires * 1000) if expires else -1,
        "comment": str(body.get("comment", "")),
    }
    return 200, {"token_value": token, "token_info": info}


def _token_delete(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    from tests.fake_apps import ws_json

    token_id = str(ws_json(req).get("token_id", ""))
    with ws.lock:
        minted = ws.credentials.minted.get(token_id)
        if minted is None or h.user is None or minted.owner != h.user.email:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Token with id {token_id} does not exist.")
        del ws.credentials.minted[token_id]
        ws.tokens.pop(minted.token, None)
        ws.credentials.revoked.append(token_id)
    return 200, {}


def _token_list(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    with ws.lock:
        mine = [m for m in ws.credentials.minted.values() if h.user and m.owner == h.user.email]
    infos = [
        {
            "token_id": m.token_id,
            "creation_time": int(m.created * 1000),
            "expiry_time": int(m.expires * 1000) if m.expires else -1,
            "comment": m.comment,
        }
        for m in mine
    ]
    return 200, {"token_infos": infos}


def _secrets_get(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    scope, key = req.query.get("scope", [""])[0], req.query.get("key", [""])[0]
    caller = h.user.email if h.user else ""
    with ws.lock:
        found = ws.apps_api.scopes.get(scope)
        if found is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")
        if found["acls"].get(caller, "") not in ("READ", "WRITE", "MANAGE"):
            return _error(
                403, "PERMISSION_DENIED", f"User {caller} does not have READ permission on scope {scope}."
            )
        value = found["secrets"].get(key)
    if value is None:
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Failed to get secret {key} for scope {scope}.")
    return 200, {"key": key, "value": base64.b64encode(str(value).encode()).decode()}


def _secrets_delete(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    from tests.fake_apps import ws_json

    body = ws_json(req)
    with ws.lock:
        found = ws.apps_api.scopes.get(str(body.get("scope", "")))
        if found is None or body.get("key") not in found["secrets"]:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", "No such secret.")
        del found["secrets"][body["key"]]
    return 200, {}


CREDENTIAL_ROUTES = [
    ("POST", re.compile(r"/api/2\.0/token/create"), _token_create),
    ("POST", re.compile(r"/api/2\.0/token/delete"), _token_delete),
    ("GET", re.compile(r"/api/2\.0/token/list"), _token_list),
    ("GET", re.compile(r"/api/2\.0/secrets/get"), _secrets_get),
    ("POST", re.compile(r"/api/2\.0/secrets/delete"), _secrets_delete),
]
