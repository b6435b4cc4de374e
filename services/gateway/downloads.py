"""`GET /api/downloads/{token}`: a file offered by `download FILE` in a shell (services/download.py),
served once, within its time limit, and only while it is still the very file that was offered."""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tornado import web

from services.download import DOWNLOAD_TTL_SECONDS, TOKEN_CHARS, records_dir
from services.gateway.handlers import BaseHandler

TOKEN_ROUTE = rf"/api/downloads/([{TOKEN_CHARS}]{{16,64}})"
CHUNK_BYTES = 256 * 1024
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
