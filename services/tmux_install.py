"""`python -m services.tmux_install`: put a pinned static tmux into ~/.local/bin.

A bootstrap step, not a supervised process: the Databricks Apps runtime has no tmux, so scripts/run
calls this when none is on PATH. Only bytes whose sha256 is known are ever installed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import io
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from services import state
from services.config import ConfigError, Settings

DEFAULT_URL = (
    "https://github.com/mjakob-gh/build-static-tmux/releases/download/v3.6b/tmux.linux-{arch}.stripped.gz"
)
# v3.6b is that project's newest release (tmux 3.6b, musl, ncurses 6.6, libevent 2.1.12). Its release
# notes carry no checksums: this digest of the amd64 asset is the one a public project that runs on the
# Databricks Apps runtime pins. It could not be re-downloaded here; a wrong value fails closed (checksum
# mismatch), never installs. arm64 has no digest anyone pins: CODING_AGENTS_TMUX_SHA256 must supply it.
DEFAULT_SHA256 = {"amd64": "a23e56e9913d610c31f2893a1c9c669a73cb8bb2b8ded1180f6572bb55e52ca5"}
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

# Per socket operation. A silently blocked host must not hold the start for long: without tmux the
# app starts in degraded mode and the setup row "tmux" retries later.
TIMEOUT = 10.0
MAX_DOWNLOAD = 20 * 1024 * 1024
# A static tmux is a few MB; the cap only stops a runaway gzip from filling the disk.
MAX_BINARY = 64 * 1024 * 1024
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# What a user can do about any failure here; the page and the platform log show it with the reason.
FIX = (
    'set CODING_AGENTS_TMUX_URL and CODING_AGENTS_TMUX_SHA256, allow github.com, or retry "tmux" on the page'
)


class InstallError(Exception):
    """Installation failed; the message is one line for the user."""


@dataclass(frozen=True)
class Source:
    url: str
    sha256: str


def resolve_source(env: Mapping[str, str], machine: str | None = None, system: str | None = None) -> Source:
    """The URL and checksum to install from; refuses any URL whose checksum is unknown."""
    url = env.get("CODING_AGENTS_TMUX_URL", "").strip()
    sha256 = env.get("CODING_AGENTS_TMUX_SHA256", "").strip().lower()
    if not url:
        system = platform.system() if system is None else system
        if system != "Linux":  # the default builds are Linux ELF binaries
            raise InstallError(f"no static tmux build for {system}: install tmux (e.g. brew install tmux)")
        machine = platform.machine() if machine is None else machine
        arch = ARCHES.get(machine.lower())
        if arch is None:
            raise InstallError(
                f"no static tmux build for machine {machine!r}: install tmux, "
                "or set CODING_AGENTS_TMUX_URL and CODING_AGENTS_TMUX_SHA256"
            )
        url = DEFAULT_URL.format(arch=arch)
        sha256 = sha256 or DEFAULT_SHA256.get(arch, "")
    if not sha256:
        raise InstallError(f"no known sha256 for {shown(url)}: set CODING_AGENTS_TMUX_SHA256 to its checksum")
    if not SHA256_HEX.fullmatch(sha256):
        raise InstallError(f"CODING_AGENTS_TMUX_SHA256 must be 64 hex digits, got {sha256!r}")
    return Source(url, sha256)


def shown(url: str) -> str:
    """The URL without credentials, query or fragment: messages go to a public /health and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def download(url: str) -> bytes:
    shown_url = shown(url)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            data: bytes = response.read(MAX_DOWNLOAD + 1)
    except urllib.error.HTTPError as exc:
        raise InstallError(f"download failed: HTTP {exc.code} {exc.reason} from {shown_url}") from None
    except urllib.error.URLError as exc:
        raise InstallError(f"cannot reach {shown_url} ({exc.reason})") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # mid-body timeouts, resets, bad URLs
        raise InstallError(f"cannot download {shown_url} ({exc})") from None
    if len(data) > MAX_DOWNLOAD:
        raise InstallError(f"download from {shown_url} is larger than {MAX_DOWNLOAD} bytes")
    return data


def verify(data: bytes, source: Source) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != source.sha256:
        raise InstallError(f"checksum mismatch for {shown(source.url)}: expected {source.sha256}, got {got}")


def gunzip(data: bytes, url: str) -> bytes:
    url = shown(url)
    if not data.startswith(b"\x1f\x8b"):
        raise InstallError(f"not a gzip file: {url}")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as archive:
            binary = archive.read(MAX_BINARY + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InstallError(f"corrupt gzip file from {url}: {exc}") from None
    if len(binary) > MAX_BINARY:
        raise InstallError(f"tmux from {url} unpacks to more than {MAX_BINARY} bytes")
    return binary


def tmux_version(path: Path, label: str) -> str:
    """`tmux -V` of the binary at path, e.g. "tmux 3.7b"; InstallError naming label if it does not run."""
    try:
        # argv[0] "tmux": `tmux -V` prints its program name, and the temp file's name is not that.
        result = subprocess.run(
            ["tmux", "-V"],
            executable=path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InstallError(f"{label} does not run: {detail}") from None
    out = result.stdout.strip()
    if result.returncode != 0 or not out.startswith("tmux "):
        detail = (out or result.stderr.strip())[:200]
        raise InstallError(f"{label} does not run as tmux (exit {result.returncode}): {detail!r}")
    return out


def install(binary: bytes, target: Path, url: str) -> str:
    """Write, test-run, then atomically rename into place; nothing is left behind on failure."""
    url = shown(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmux-", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        # Closed before it runs: executing a file still open for writing fails with ETXTBSY.
        with os.fdopen(fd, "wb") as f:
            f.write(binary)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o755)
        version = tmux_version(tmp, f"tmux from {url}")
        Path(tmp).replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return version


def run(
    target: Path, env: Mapping[str, str], force: bool = False, say: Callable[[str], None] | None = None
) -> str:
    """Install tmux at target unless a working one is there; returns the message to print.
    `say` gets the progress line (stderr by default)."""
    if not force and target.exists():
        try:
            return f"{tmux_version(target, str(target))} already installed at {target}"
        except InstallError:
            pass  # a broken leftover: replace it
    source = resolve_source(env)
    (say or _say)(f"downloading tmux from {shown(source.url)}")
    data = download(source.url)
    verify(data, source)
    version = install(gunzip(data, source.url), target, source.url)
    return f"installed {version} into {target}"


@dataclass(frozen=True)
class Record:
    """The last install attempt's outcome, kept in the state dir for the gateway (degraded mode)."""

    ok: bool
    message: str
    fix: str
    time: float


def record_path(settings: Settings) -> Path:
    return settings.files.tmux_install


def record(settings: Settings, ok: bool, message: str) -> None:
    state.atomic_write_json(
        record_path(settings), {"ok": ok, "message": message, "fix": "" if ok else FIX, "time": time.time()}
    )


def read_record(settings: Settings) -> Record | None:
    """The last outcome, or None when there is none (or it is unreadable: then only the binary counts)."""
    try:
        data = state.read_json(record_path(settings))
        return Record(bool(data["ok"]), str(data["message"]), str(data["fix"]), float(data["time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _say(message: str) -> None:
    print(f"[coding-agents] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.tmux_install", description="Install a pinned static tmux."
    )
    parser.add_argument("--force", action="store_true", help="reinstall even if a working tmux is there")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        _say(f"error: {exc}")
        return 1
    try:
        message = run(settings.local_bin / "tmux", env, force=args.force)
    except InstallError as exc:
        message = str(exc)
    except OSError as exc:  # ~/.local/bin not writable, disk full
        message = f"cannot install tmux: {exc}"
    else:
        record(settings, True, message)
        _say(message)
        return 0
    # scripts/run goes on without tmux: the gateway shows this reason (degraded mode).
    record(settings, False, message)
    _say(f"error: {message}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
