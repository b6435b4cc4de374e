"""`GET /api/sessions/{name}/search?q=TEXT`: Find over a pane's whole tmux history (history.py)."""

from __future__ import annotations

from tornado import web

from services.gateway import history
from services.gateway.handlers import BaseHandler, _session_name, _tmux_unavailable
from services.tmux import SessionNotFound, TmuxError


class SearchHandler(BaseHandler):
    """`GET /api/sessions/{name}/search?q=TEXT`: lines of the pane's whole tmux history holding TEXT."""

    async def get(self, raw: str) -> None:
        name = _session_name(raw)
        # The raw value: Tornado's accessor would quietly turn control characters into spaces.
        raw_query = self.request.query_arguments.get("q", [b""])[-1]
        query = raw_query.decode("utf-8", errors="replace")
        if not query.strip() or len(query) > history.MAX_QUERY_CHARS or not query.isprintable():
            raise web.HTTPError(400, f"'q' must be 1-{history.MAX_QUERY_CHARS} printable characters")
        terminals = self.ctx.terminals
        if name in terminals.ptys:
            raise web.HTTPError(409, "this shell runs without tmux: its history is searched in the page")
        try:
            result = await self.ctx.run_blocking(history.search, terminals.tmux.sessions, name, query)
        except SessionNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None
        except TmuxError as exc:
            raise _tmux_unavailable(exc) from None
        self.write(result.to_json())
