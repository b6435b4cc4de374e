"""`download FILE...` in the browser terminal: the page downloads each file.

The command is the shell's consent: it writes a one-time record naming the file under an
unguessable token into the state dir (which only this user can write). In tmux the record names the
pane, and the gateway tells the page of that pane's session (services/gateway/downloads.py,
DownloadAnnouncer); without tmux the command tells the page itself, with a private OSC sequence on
the terminal. The page fetches `/api/downloads/TOKEN`; the gateway serves the file once, within
DOWNLOAD_TTL_SECONDS, and only if it is still the same file. Terminal output alone (`cat` of a
hostile file) cannot make the page download anything: a token without a record is refused.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from services import state
from services.statefiles import StateFiles

OSC_CODE = 7733  # private OSC number the page listens for (web/js/download.js)
DOWNLOAD_TTL_SECONDS = 600
TOKEN_CHARS = "A-Za-z0-9_-"


class Refused(Exception):
    """The file cannot be offered; the message says why."""


@dataclass(frozen=True)
class Offer:
    token: str
    path: Path
    name: str
    size: int


def records_dir(state_dir: Path) -> Path:
    return StateFiles(state_dir).downloads


def offer(state_dir: Path, raw: str, pane: str = "") -> Offer:
    """Check `raw` names a regular file of this user's, and record it under a fresh token; `pane`
    (a tmux pane id) asks the gateway to announce it to that pane's session."""
    path = Path(os.path.realpath(raw))
    try:
        info = path.stat()
    except OSError as exc:
        raise Refused(f"{raw}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise Refused(f"{raw}: not a regular file (archive a folder first: tar czf x.tgz FOLDER)")
    if info.st_uid != os.getuid():
        raise Refused(f"{raw}: not your file (owned by uid {info.st_uid}); copy it first")
    if not os.access(path, os.R_OK):
        raise Refused(f"{raw}: not readable")
    token = secrets.token_urlsafe(24)
    record = {
        "path": str(path),
        "name": path.name,
        "size": info.st_size,
        "device": info.st_dev,
        "inode": info.st_ino,
        "created": time.time(),
        "pane": pane,
    }
    folder = state.ensure_dir(records_dir(state_dir))
    prune(folder)
    state.atomic_write_json(folder / f"{token}.json", record)
    return Offer(token, path, path.name, info.st_size)


def prune(folder: Path) -> None:
    """Forget records nobody fetched in time."""
    cutoff = time.time() - DOWNLOAD_TTL_SECONDS
    for entry in folder.glob("*.json"):
        try:
            if entry.stat().st_mtime < cutoff:
                entry.unlink()
        except OSError:
            pass


def announcement(item: Offer) -> bytes:
    """The OSC sequence telling the page to fetch the token (without tmux: the gateway announces
    records made in tmux panes, as tmux's passthrough is not reliable enough to carry it)."""
    return f"\x1b]{OSC_CODE};download={item.token};{quote(item.name)}\x07".encode()


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: download FILE...  (the browser showing this terminal downloads each FILE)")
        return 0 if argv else 2
    state_raw = os.environ.get("CODING_AGENTS_STATE_DIR", "").strip()
    if not state_raw:
        print("download: CODING_AGENTS_STATE_DIR is not set; run this in the app's terminal", file=sys.stderr)
        return 2
    pane = os.environ.get("TMUX_PANE", "") if os.environ.get("TMUX") else ""
    tty = -1
    if not pane:
        try:
            tty = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY)
        except OSError:
            print(
                "download: no terminal to reach the browser through; run it in the browser terminal",
                file=sys.stderr,
            )
            return 2
    failed = 0
    try:
        for raw in argv:
            try:
                item = offer(Path(state_raw), raw, pane)
            except Refused as exc:
                print(f"download: {exc}", file=sys.stderr)
                failed += 1
                continue
            if tty >= 0:
                os.write(tty, announcement(item))
            print(
                f"download: {item.name} ({human_size(item.size)}) sent to the browser; "
                f"the link works once, for {DOWNLOAD_TTL_SECONDS // 60} minutes",
                file=sys.stderr,
            )
    finally:
        if tty >= 0:
            os.close(tty)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
