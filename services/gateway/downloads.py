"""Files offered by `download FILE` in a shell (services/download.py): DownloadAnnouncer tells the
page of a pane's session about each one; `GET /api/downloads/{token}` serves it once, within its
time limit, and only while it is still the very file that was offered."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tornado import web

from services.download import DOWNLOAD_TTL_SECONDS, TOKEN_CHARS, records_dir
from services.gateway import protocol
from services.gateway.context import GatewayContext
from services.gateway.handlers import BaseHandler
from services.gateway.terminal import TerminalChannel
from services.tmux import TmuxError

log = logging.getLogger(__name__)

TOKEN_ROUTE = rf"/api/downloads/([{TOKEN_CHARS}]{{16,64}})"
CHUNK_BYTES = 256 * 1024
# How often the records folder is looked at (one stat while nothing changes), and how long a record
# waits for a page on its session to open before it is no longer announced (it can still be fetched).
WATCH_INTERVAL_SECONDS = 0.25
DELIVERY_WINDOW_SECONDS = 60
GONE = "this download link was used already or has expired; run `download FILE` again"


@dataclass(frozen=True)
class Claimed:
    fd: int
    name: str
    size: int


def claim(state_dir: Path, token: str) -> Claimed:
    """Take the token's record (deleting it: one use) and open its file; web.HTTPError otherwise."""
    record_path = records_dir(state_dir) / f"{token}.json"
    try:
        record = json.loads(record_path.read_bytes())
        record_path.unlink()  # whoever unlinks first owns the download
    except (OSError, ValueError):
        raise web.HTTPError(404, GONE) from None
    if time.time() - float(record.get("created", 0)) > DOWNLOAD_TTL_SECONDS:
        raise web.HTTPError(404, GONE)
    try:
        fd = os.open(record["path"], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise web.HTTPError(404, f"{record['name']}: {exc.strerror}") from None
    info = os.fstat(fd)
    same = (info.st_dev, info.st_ino) == (record["device"], record["inode"])
    if not (same and stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()):
        os.close(fd)
        raise web.HTTPError(409, f"{record['name']} changed since it was offered; run `download` again")
    return Claimed(fd, str(record["name"]), info.st_size)


class DownloadHandler(BaseHandler):
    async def get(self, token: str) -> None:
        claimed = await self.ctx.run_blocking(claim, self.ctx.settings.state_dir, token)
        try:
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Length", str(claimed.size))
            self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(claimed.name)}")
            self.set_header("X-Download-Name", quote(claimed.name))
            remaining = claimed.size
            while remaining > 0:
                chunk = await self.ctx.run_blocking(os.read, claimed.fd, min(CHUNK_BYTES, remaining))
                if not chunk:
                    break  # truncated meanwhile: the browser sees a short body and reports failure
                remaining -= len(chunk)
                self.write(chunk)
                await self.flush()
        finally:
            os.close(claimed.fd)


class DownloadAnnouncer:
    """Sends `download` to the page of the session whose pane ran `download FILE`.

    The record names the pane; the gateway looks up the pane's session at delivery time (so a
    renamed session still gets it) and picks, of that session's open connections, the one typed
    into last: the tab the command was typed in, not every tab on the session.
    """

    def __init__(
        self,
        folder: Path,
        channels: Callable[[], list[TerminalChannel]],
        session_of_pane: Callable[[str], Awaitable[str | None]],
    ) -> None:
        self._folder = folder
        self._channels = channels
        self._session_of_pane = session_of_pane
        self._seen_change = -1
        self._waiting: dict[str, dict[str, Any]] = {}  # token -> record, not yet delivered
        self._done: dict[str, float] = {}  # token -> when: delivered or given up, never again

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # one bad record or a tmux hiccup must not stop the announcing
                log.exception("announcing downloads failed; trying again")
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)

    async def check(self) -> None:
        """Read records new since the last look, then deliver what has a page to go to."""
        try:
            change = self._folder.stat().st_mtime_ns
        except OSError:
            return  # no download offered yet
        # A change within the filesystem's timestamp granularity of the last one leaves the
        # folder's mtime as it was: look again while the last change is recent.
        if change != self._seen_change or time.time_ns() - change < 2_000_000_000:
            self._seen_change = change
            self._read_new()
        if self._waiting:
            await self._deliver()

    def _read_new(self) -> None:
        now = time.time()
        self._done = {t: at for t, at in self._done.items() if now - at < DOWNLOAD_TTL_SECONDS}
        found: list[tuple[str, dict[str, Any]]] = []
        for entry in self._folder.glob("*.json"):
            token = entry.stem
            if token in self._waiting or token in self._done:
                continue
            try:
                record = json.loads(entry.read_bytes())
            except (OSError, ValueError):
                continue  # fetched meanwhile, or being written: the rename makes it whole next time
            if not isinstance(record, dict) or not record.get("pane"):
                self._done[token] = now  # without tmux the command told the page itself
                continue
            found.append((token, record))
        # `download a b` saves a, then b: in the order offered.
        for token, record in sorted(found, key=lambda item: float(item[1].get("created", 0))):
            self._waiting[token] = record

    async def _deliver(self) -> None:
        now = time.time()
        channels = self._channels()
        for token, record in list(self._waiting.items()):
            if now - float(record.get("created", 0)) > DELIVERY_WINDOW_SECONDS:
                del self._waiting[token]
                self._done[token] = now
                log.info("download %s: no page open on its session; not announced", record.get("name"))
                continue
            if not channels:
                continue
            try:
                session = await self._session_of_pane(str(record["pane"]))
            except TmuxError:
                continue  # tmux restarting: next look
            if session is None:
                del self._waiting[token]  # the pane is gone: nobody to tell
                self._done[token] = now
                continue
            on_session = [c for c in channels if c.session == session]
            if not on_session:
                continue
            target = max(on_session, key=lambda c: c.last_input)
            target.send(protocol.download(token, str(record.get("name", "download"))))
            del self._waiting[token]
            self._done[token] = now


def announcer_for(ctx: GatewayContext) -> DownloadAnnouncer:
    """The gateway's announcer: its state dir's records, its open connections, its tmux server."""

    async def session_of_pane(pane: str) -> str | None:
        return await ctx.run_blocking(ctx.sessions.session_of_pane, pane)

    return DownloadAnnouncer(records_dir(ctx.settings.state_dir), ctx.open_channels, session_of_pane)
