"""`GET /api/credentials` (state, source, expiry; never the token) and `PUT /api/credentials`
`{"token": …}`: the owner connects the workspace from the page (README, "Connect your workspace").
Owner-only and Origin-checked like every route (handlers.BaseHandler)."""

from __future__ import annotations

from tornado import web

from services.credentials.manager import Refused
from services.gateway.handlers import BaseHandler

# A PAT is ~40 characters and an OAuth token a few KiB: 16 KiB holds any with room to spare.
CREDENTIALS_BODY_BYTES = 16 * 1024
MAX_TOKEN_CHARS = 8192


class CredentialsHandler(BaseHandler):
    max_body_bytes = CREDENTIALS_BODY_BYTES

    def get(self) -> None:
        manager = self.ctx.credentials
        if manager is None:
            self.write({"state": "local", "reason": "local mode: the CLI uses your own ~/.databrickscfg"})
            return
        self.write(manager.status())

    async def put(self) -> None:
        manager = self.ctx.credentials
        if manager is None:
            raise web.HTTPError(409, "local mode: the app does not manage a workspace credential")
        token = self.json_body().get("token")
        if not isinstance(token, str) or not token.strip():
            raise web.HTTPError(400, "'token' must be a personal access token (a non-empty string)")
        token = token.strip()
        if len(token) > MAX_TOKEN_CHARS or any(c.isspace() or not c.isprintable() for c in token):
            raise web.HTTPError(400, "'token' must be one token: no spaces or line breaks inside")
        try:
            status = await manager.connect(token)
        except Refused as exc:
            raise web.HTTPError(exc.status, str(exc)) from None
        self.write(status)
