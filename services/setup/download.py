"""The `kind: download` step: a pinned archive, verified by sha256 (a pin in agents.yaml or the line
naming it in a published checksum file), one binary unpacked from it into ~/.local/bin.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import platform
import re
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path

from services import state
from services.config import Settings
from services.setup.checksums import NoChecksum, asset_name, digest_for
from services.setup.registry import Tool
from services.setup.steps import Step, StepContext, StepFailed, StepLog

MAX_DOWNLOAD = 200 * 1024 * 1024
MAX_CHECKSUM_FILE = 256 * 1024  # a release's checksums list for every platform is a few KiB
DOWNLOAD_TIMEOUT = 30.0  # per socket operation; the step's own timeout bounds the whole download
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def machine_arch() -> str:
    machine = platform.machine().lower()
    return ARCHES.get(machine, machine)


def fetch(url: str, limit: int = MAX_DOWNLOAD, log: StepLog | None = None) -> bytes:
    """GET url into memory; one-line StepFailed for HTTP errors, unreachable hosts and oversize."""
    request = urllib.request.Request(url, headers={"User-Agent": "coding-agents-setup"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
            total = int(response.headers.get("Content-Length") or 0)
            chunks: list[bytes] = []
            size = 0
            next_report = 0.1
            while chunk := response.read(256 * 1024):
                size += len(chunk)
                if size > limit:
                    raise StepFailed(f"{url} is larger than {limit // (1024 * 1024)} MB; refusing it")
                chunks.append(chunk)
                if log is not None and total and size / total >= next_report:
                    log.line(f"downloaded {size * 100 // total}% of {total // 1024} KiB")
                    next_report += 0.1
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise StepFailed(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from None
    except urllib.error.URLError as exc:
        raise StepFailed(f"download failed: cannot reach {url}: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise StepFailed(f"download failed: {url}: {exc}") from None


def extract_member(archive: bytes, url: str, member: str) -> bytes:
    """The one file `member` from a .zip, .tar.gz/.tgz or .gz archive."""
    try:
        if url.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(archive)) as zf:
                return zf.read(member)
        if url.endswith((".tar.gz", ".tgz")):
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tf:
                extracted = tf.extractfile(member)
                if extracted is None:
                    raise KeyError(member)
                return extracted.read()
        if url.endswith(".gz"):
            return gzip.decompress(archive)
    except KeyError:
        raise StepFailed(f"{member!r} is not in the archive {url.rsplit('/', 1)[-1]}") from None
    except (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, OSError, EOFError) as exc:
        raise StepFailed(f"cannot unpack {url.rsplit('/', 1)[-1]}: {exc}") from None
    raise StepFailed(f"unknown archive type: {url.rsplit('/', 1)[-1]} (zip, tar.gz, tgz or gz)")


class Download(Step):
    kind = "download"

    def __init__(self, tool: Tool, arch: str | None = None) -> None:
        super().__init__(tool.id, tool.title, tool.after, tool.timeout, tool.version)
        self.tool = tool
        self.arch = arch or machine_arch()
        # Archives named per architecture keep the name inside too (gh_<v>_linux_<arch>/bin/gh).
        self.member = tool.member.replace("{arch}", self.arch)

    def marker(self, settings: Settings) -> Path:
        return settings.home / ".local" / "share" / "coding-agents" / "tools" / f"{self.id}.version"

    async def current(self, ctx: StepContext) -> str | None:
        try:
            installed = self.marker(ctx.settings).read_text().strip()
        except OSError:
            return None
        if installed == self.version and os.access(ctx.settings.local_bin / self.tool.binary, os.X_OK):
            return f"{self.tool.binary} {self.version} already installed"
        return None

    def env_prefix(self) -> str:
        """CODING_AGENTS_<ID>_: where a locked-down workspace points this download at its own mirror."""
        return "CODING_AGENTS_" + re.sub(r"[^A-Z0-9]", "_", self.id.upper()) + "_"

    def source(self, env: Mapping[str, str], log: StepLog) -> tuple[str, str]:
        """The URL to fetch and the sha256 it must have: agents.yaml's, or the <ID>_URL/_SHA256 override.

        A mirror of the very same asset (same file name) keeps the pinned checksum; any other file
        needs its own, so a setting can never bring in unverified bytes.
        """
        pinned_url = self.tool.url.get(self.arch)
        url = env.get(self.env_prefix() + "URL", "").strip() or pinned_url
        if url is None:
            raise StepFailed(
                f"no {self.tool.binary} build for this machine ({self.arch}); "
                f"set {self.env_prefix()}URL and {self.env_prefix()}SHA256"
            )
        override = env.get(self.env_prefix() + "SHA256", "").strip().lower()
        if override:
            if not re.fullmatch(r"[0-9a-f]{64}", override):
                raise StepFailed(f"{self.env_prefix()}SHA256 must be 64 hex digits, got {override[:80]!r}")
            return url, override
        same_asset = pinned_url is not None and url.rsplit("/", 1)[-1] == pinned_url.rsplit("/", 1)[-1]
        if url != pinned_url and not same_asset and not self.tool.sha256_url:
            raise StepFailed(f"{url} is not the pinned asset: set {self.env_prefix()}SHA256 to its checksum")
        return url, self.expected_sha256(url, log)

    def expected_sha256(self, url: str, log: StepLog) -> str:
        """The pin in agents.yaml when `url` is the pinned asset, else the published checksum file's line.

        The pin wins: it was checked against public sources when it was committed, while the checksum
        file comes from the same server as the asset, so it cannot catch a tampered release or mirror.
        """
        pinned_url = self.tool.url.get(self.arch)
        if self.arch in self.tool.sha256 and pinned_url and asset_name(url) == asset_name(pinned_url):
            return self.tool.sha256[self.arch]
        if not self.tool.sha256_url:
            raise StepFailed(f"no checksum for {self.arch}; refusing to install unverified bytes")
        sums_url = self.tool.sha256_url.replace("{url}", url)
        log.line(f"checksum from {sums_url}")
        text = fetch(sums_url, limit=MAX_CHECKSUM_FILE).decode("utf-8", errors="replace")
        try:
            return digest_for(text, asset_name(url), sums_url)
        except NoChecksum as exc:
            raise StepFailed(str(exc)) from None

    def install(self, ctx: StepContext) -> None:
        url, expected = self.source(ctx.env, ctx.log)
        ctx.log.line(f"downloading {url}")
        archive = fetch(url, log=ctx.log)
        got = hashlib.sha256(archive).hexdigest()
        if got != expected:
            raise StepFailed(
                f"checksum mismatch for {url.rsplit('/', 1)[-1]}: expected {expected}, got {got}"
            )
        binary = extract_member(archive, url, self.member)
        target = ctx.settings.local_bin / self.tool.binary
        target.parent.mkdir(parents=True, exist_ok=True)
        state.atomic_write_bytes(target, binary, mode=0o755)
        marker = self.marker(ctx.settings)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.version + "\n")
        ctx.log.line(f"installed {target} ({len(binary) // 1024} KiB, sha256 ok)")

    async def run(self, ctx: StepContext) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.install, ctx)
