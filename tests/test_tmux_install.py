"""services.tmux_install against a real HTTP server: only verified, runnable bytes are installed."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT
from services.tmux_install import DEFAULT_SHA256, InstallError, resolve_source
from tests.helpers import FileServer, free_port, gzipped_system_tmux

TMUX_GZ, TMUX_SHA = gzipped_system_tmux()
TEXT_GZ = gzip.compress(b"this is not a program\n")
PLAIN = b"\x7fELF but not gzipped"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Installer:
    home: Path
    server: FileServer

    @property
    def target(self) -> Path:
        return self.home / ".local" / "bin" / "tmux"

    def run(
        self, path: str | None, checksum: str | None, *args: str, url: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8"}
        if path is not None or url is not None:
            env["CODING_AGENTS_TMUX_URL"] = url or self.server.url(path or "")
        if checksum is not None:
            env["CODING_AGENTS_TMUX_SHA256"] = checksum
        return subprocess.run(
            [sys.executable, "-m", "services.tmux_install", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def leftovers(self) -> list[str]:
        folder = self.target.parent
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def installer(tmp_path: Path) -> Iterator[Installer]:
    files = {"/tmux.gz": TMUX_GZ, "/text.gz": TEXT_GZ, "/plain": PLAIN}
    with FileServer(files) as server:
        yield Installer(tmp_path, server)


def test_installs_a_verified_tmux_that_runs(installer: Installer) -> None:
    result = installer.run("/tmux.gz", TMUX_SHA)
    assert result.returncode == 0, result.stderr
    assert f"downloading tmux from {installer.server.url('/tmux.gz')}" in result.stderr
    assert f"into {installer.target}" in result.stderr
    assert installer.target.stat().st_mode & 0o777 == 0o755
    version = subprocess.run([installer.target, "-V"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("tmux ")
    assert f"installed {version.stdout.strip()} into" in result.stderr
    assert installer.leftovers() == ["tmux"]


def test_second_run_downloads_nothing_unless_forced(installer: Installer) -> None:
    assert installer.run("/tmux.gz", TMUX_SHA).returncode == 0
    again = installer.run("/tmux.gz", TMUX_SHA)
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stderr
    assert installer.server.requests["/tmux.gz"] == 1
    forced = installer.run("/tmux.gz", TMUX_SHA, "--force")
    assert forced.returncode == 0, forced.stderr
    assert installer.server.requests["/tmux.gz"] == 2


def test_a_broken_leftover_is_replaced(installer: Installer) -> None:
    installer.target.parent.mkdir(parents=True)
    installer.target.write_text("#!/bin/sh\nexit 1\n")
    installer.target.chmod(0o755)
    result = installer.run("/tmux.gz", TMUX_SHA)
    assert result.returncode == 0, result.stderr
    assert installer.server.requests["/tmux.gz"] == 1
    assert installer.target.read_bytes() == gzip.decompress(TMUX_GZ)


def test_checksum_mismatch_installs_nothing(installer: Installer) -> None:
    wrong = "0" * 64
    result = installer.run("/tmux.gz", wrong)
    assert result.returncode == 1
    assert f"checksum mismatch for {installer.server.url('/tmux.gz')}" in result.stderr
    assert f"expected {wrong}, got {TMUX_SHA}" in result.stderr
    assert installer.leftovers() == []


def test_http_error_names_status_and_url(installer: Installer) -> None:
    result = installer.run("/missing.gz", TMUX_SHA)
    assert result.returncode == 1
    assert f"HTTP 404 Not Found from {installer.server.url('/missing.gz')}" in result.stderr
    assert installer.leftovers() == []


def test_unreachable_server_is_a_clear_error(installer: Installer) -> None:
    url = f"http://127.0.0.1:{free_port()}/tmux.gz"  # nothing listens there any more
    result = installer.run(None, TMUX_SHA, url=url)
    assert result.returncode == 1
    assert f"error: cannot reach {url} (" in result.stderr
    assert "refused" in result.stderr.lower()


def test_a_payload_that_is_not_gzip_is_refused(installer: Installer) -> None:
    result = installer.run("/plain", sha(PLAIN))
    assert result.returncode == 1
    assert f"not a gzip file: {installer.server.url('/plain')}" in result.stderr
    assert installer.leftovers() == []


def test_a_file_url_installs_like_a_download(installer: Installer, tmp_path: Path) -> None:
    local = tmp_path / "tmux.gz"
    local.write_bytes(TMUX_GZ)
    result = installer.run(None, TMUX_SHA, url=local.as_uri())
    assert result.returncode == 0, result.stderr
    assert f"into {installer.target}" in result.stderr
    missing = installer.run(None, TMUX_SHA, "--force", url=(tmp_path / "absent.gz").as_uri())
    assert missing.returncode == 1
    assert "absent.gz" in missing.stderr and "No such file" in missing.stderr


def test_a_custom_url_needs_a_checksum(installer: Installer) -> None:
    result = installer.run("/tmux.gz", None)
    assert result.returncode == 1
    assert "set CODING_AGENTS_TMUX_SHA256" in result.stderr
    assert installer.server.requests["/tmux.gz"] == 0  # refused before downloading anything
    assert installer.leftovers() == []


def test_a_payload_that_does_not_run_leaves_nothing_behind(installer: Installer) -> None:
    result = installer.run("/text.gz", sha(TEXT_GZ))
    assert result.returncode == 1
    assert "does not run" in result.stderr
    assert result.stderr.count("\n") == 2  # the progress line and one error line
    assert installer.leftovers() == []


def test_default_source_per_architecture() -> None:
    for machine in ("x86_64", "amd64"):
        source = resolve_source({}, machine, "Linux")
        assert source.url.endswith("/v3.6b/tmux.linux-amd64.stripped.gz")
        assert source.sha256 == DEFAULT_SHA256["amd64"]
    # No published checksum pinned for arm64: the user must supply one.
    with pytest.raises(InstallError, match="set CODING_AGENTS_TMUX_SHA256"):
        resolve_source({}, "aarch64", "Linux")
    custom = resolve_source({"CODING_AGENTS_TMUX_SHA256": "AB" * 32}, "arm64", "Linux")
    assert custom.url.endswith("/tmux.linux-arm64.stripped.gz") and custom.sha256 == "ab" * 32
    with pytest.raises(InstallError, match="no static tmux build for machine 'riscv64'"):
        resolve_source({}, "riscv64", "Linux")
    with pytest.raises(InstallError, match="64 hex digits"):
        resolve_source({"CODING_AGENTS_TMUX_SHA256": "abc"}, "x86_64", "Linux")
    with pytest.raises(InstallError, match="brew install tmux"):
        resolve_source({}, "arm64", "Darwin")


def test_machine_default_is_this_machine() -> None:
    uname = os.uname()
    if uname.sysname != "Linux" or uname.machine not in ("x86_64", "amd64"):
        pytest.skip(f"only Linux amd64 has a pinned checksum; this is {uname.sysname} {uname.machine}")
    assert resolve_source({}).sha256 == DEFAULT_SHA256["amd64"]
