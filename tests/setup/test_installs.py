"""Download and npm steps against local servers: checksums, archives, registry errors, idempotence."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator

import pytest

from services.setup.download import machine_arch
from services.setup.steps import npm_reason
from tests.helpers import FileServer
from tests.setup.conftest import SetupEnv

FAKE_CLI = b"#!/bin/sh\necho 'Databricks CLI v0.258.0'\n"
FAKE_MICRO = b"#!/bin/sh\necho 'Version: 2.0.14'\n"


def zip_with(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(name, data)
    return buffer.getvalue()


def tar_gz_with(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o755
        tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


CLI_ZIP = zip_with("databricks", FAKE_CLI)
MICRO_TGZ = tar_gz_with("micro-2.0.14/micro", FAKE_MICRO)


@pytest.fixture
def files() -> Iterator[FileServer]:
    with FileServer(
        {
            "/cli.zip": CLI_ZIP,
            "/micro.tar.gz": MICRO_TGZ,
            "/micro.tar.gz.sha": f"{hashlib.sha256(MICRO_TGZ).hexdigest()}  micro.tar.gz\n".encode(),
            "/empty.sha": b"not a digest\n",
        }
    ) as server:
        yield server


def download_tools(server: FileServer, cli_sha: str, micro_sums: str = "/micro.tar.gz.sha") -> str:
    arch = machine_arch()
    return f"""
tools:
  databricks-cli:
    title: Databricks CLI
    kind: download
    version: "0.258.0"
    binary: databricks
    member: databricks
    url: {{{arch}: "{server.url("/cli.zip")}"}}
    sha256: {{{arch}: "{cli_sha}"}}
  micro:
    title: micro
    kind: download
    version: "2.0.14"
    binary: micro
    member: "micro-{{version}}/micro"
    url: {{{arch}: "{server.url("/micro.tar.gz")}"}}
    sha256_url: "{server.url(micro_sums)}"
"""


def run_binary(setup_env: SetupEnv, name: str) -> str:
    path = setup_env.home / ".local" / "bin" / name
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout


def test_downloads_are_verified_unpacked_and_skipped_next_time(
    setup_env: SetupEnv, files: FileServer
) -> None:
    setup_env.registry(download_tools(files, hashlib.sha256(CLI_ZIP).hexdigest()))
    result = setup_env.run()
    assert result.returncode == 0, result.stdout
    assert setup_env.states() == {"databricks-cli": "ok", "micro": "ok"}
    assert run_binary(setup_env, "databricks") == "Databricks CLI v0.258.0\n"
    assert run_binary(setup_env, "micro") == "Version: 2.0.14\n"
    assert files.requests["/cli.zip"] == 1
    assert setup_env.run().returncode == 0
    assert setup_env.states() == {"databricks-cli": "skipped", "micro": "skipped"}
    assert files.requests["/cli.zip"] == 1  # nothing downloaded again


def test_a_checksum_mismatch_installs_nothing(setup_env: SetupEnv, files: FileServer) -> None:
    setup_env.registry(download_tools(files, "0" * 64, micro_sums="/empty.sha"))
    assert setup_env.run().returncode == 1
    status = setup_env.status()
    cli, micro = status.step("databricks-cli"), status.step("micro")
    assert cli.state.value == "failed"
    assert (
        cli.reason
        == f"checksum mismatch for cli.zip: expected {'0' * 64}, got {hashlib.sha256(CLI_ZIP).hexdigest()}"
    )
    assert micro.reason.endswith("empty.sha holds no sha256 digest")
    assert not (setup_env.home / ".local" / "bin" / "databricks").exists()
    assert not [p for p in (setup_env.home / ".local" / "bin").glob(".*")]  # no temp files left


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("/cli.zip", "/missing.zip"), "download failed: HTTP 404"),
        (("http://127.0.0.1", "http://localhost:1"), "download failed: cannot reach http://localhost:1"),
    ],
    ids=["404", "unreachable"],
)
def test_download_errors_name_the_url(
    setup_env: SetupEnv, files: FileServer, change: tuple[str, str], expected: str
) -> None:
    text = download_tools(files, hashlib.sha256(CLI_ZIP).hexdigest())
    cli_part, micro_part = text.split("  micro:")
    setup_env.registry(cli_part.replace(*change) + "  micro:" + micro_part)
    assert setup_env.run().returncode == 1
    assert setup_env.status().step("databricks-cli").reason.startswith(expected)
    assert setup_env.states()["micro"] == "ok"  # the other download went on


def test_a_mirror_replaces_a_download_url_and_keeps_or_needs_its_checksum(
    setup_env: SetupEnv, files: FileServer
) -> None:
    """A locked-down workspace points downloads at its own mirror (README: locked-down workspaces)."""
    cli_sha = hashlib.sha256(CLI_ZIP).hexdigest()
    setup_env.registry(download_tools(files, cli_sha).replace("/cli.zip", "/blocked/cli.zip"))  # a 404
    with FileServer({"/mirror/cli.zip": CLI_ZIP, "/mirror/other-name.zip": CLI_ZIP}) as mirror:
        # The same asset by name on a mirror: the pinned checksum still applies.
        setup_env.env["CODING_AGENTS_DATABRICKS_CLI_URL"] = mirror.url("/mirror/cli.zip")
        setup_env.run("--only", "databricks-cli")
        assert setup_env.states()["databricks-cli"] == "ok", setup_env.status().step("databricks-cli").reason
        assert mirror.requests["/mirror/cli.zip"] == 1 and files.requests["/blocked/cli.zip"] == 0
        # Another file name: refused until its checksum is given, then verified against it.
        setup_env.env["CODING_AGENTS_DATABRICKS_CLI_URL"] = mirror.url("/mirror/other-name.zip")
        (setup_env.home / ".local" / "share" / "coding-agents" / "tools" / "databricks-cli.version").unlink()
        setup_env.run("--only", "databricks-cli")
        step = setup_env.status().step("databricks-cli")
        assert step.state.value == "failed"
        assert step.reason.endswith(
            "is not the pinned asset: set CODING_AGENTS_DATABRICKS_CLI_SHA256 to its checksum"
        )
        assert mirror.requests["/mirror/other-name.zip"] == 0
        setup_env.env["CODING_AGENTS_DATABRICKS_CLI_SHA256"] = "f" * 64
        setup_env.run("--only", "databricks-cli")
        assert (
            setup_env.status()
            .step("databricks-cli")
            .reason.startswith("checksum mismatch for other-name.zip")
        )
        setup_env.env["CODING_AGENTS_DATABRICKS_CLI_SHA256"] = cli_sha.upper()
        setup_env.run("--only", "databricks-cli")
        assert setup_env.states()["databricks-cli"] == "ok"


def test_a_missing_archive_member_is_named(setup_env: SetupEnv, files: FileServer) -> None:
    setup_env.registry(
        download_tools(files, hashlib.sha256(CLI_ZIP).hexdigest()).replace(
            "member: databricks", "member: bin/db"
        )
    )
    assert setup_env.run().returncode == 1
    assert setup_env.status().step("databricks-cli").reason == "'bin/db' is not in the archive cli.zip"


NPM_AGENT = """
agents:
  claude:
    title: Claude Code
    package: "@anthropic-ai/claude-code"
    version: "2.1.197"
    binary: claude
    launch: claude
    family: anthropic
    model: databricks-claude-opus-4-6
"""


def test_npm_against_a_dead_registry_fails_fast_with_npms_words(setup_env: SetupEnv) -> None:
    setup_env.registry(NPM_AGENT)
    setup_env.env["npm_config_registry"] = "http://127.0.0.1:9/"
    setup_env.env["npm_config_cache"] = str(setup_env.root / "npm-cache")  # nothing cached: must fetch
    result = setup_env.run(timeout=90)
    assert result.returncode == 1
    claude = setup_env.status().step("claude")
    assert claude.state.value == "failed"
    assert claude.reason.startswith(
        "npm install failed (exit 1): ECONNREFUSED FetchError: request to http://127.0.0.1:9/"
    ), claude.reason
    assert (claude.seconds or 0) < 60


def test_npm_reason_quotes_the_registry() -> None:
    lines = [
        "npm error code E404",
        "npm error 404 Not Found - GET https://registry.npmjs.org/@x%2fy - Not found",
        "npm error A complete log of this run can be found in: /x.log",
    ]
    assert npm_reason(lines, 1) == (
        "npm install failed (exit 1): E404 404 Not Found - GET https://registry.npmjs.org/@x%2fy - Not found"
    )


@pytest.mark.slow
def test_the_shipped_agents_install_for_real_and_answer_version(setup_env: SetupEnv) -> None:
    """Every npm agent of agents.yaml, from the npm registry into a fresh HOME (~1 GB)."""
    from services.setup.registry import load

    registry = load()
    agents_only = "agents:\n" + "".join(
        f'  {a.id}:\n    title: {a.title}\n    package: "{a.package}"\n    version: "{a.version}"\n'
        f"    binary: {a.binary}\n    launch: {a.launch}\n    family: {a.family}\n    model: {a.model}\n"
        for a in registry.agents
    )
    setup_env.registry(agents_only)
    result = setup_env.run(timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    bin_dir = setup_env.home / ".local" / "bin"
    env = {**os.environ, "HOME": str(setup_env.home), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for agent in registry.agents:
        version = subprocess.run(
            [str(bin_dir / agent.binary), "--version"], capture_output=True, text=True, env=env, timeout=60
        )
        assert agent.version in version.stdout, (agent.id, version.stdout, version.stderr)
    seconds = {s.id: round(s.seconds or 0, 1) for s in setup_env.status().steps}
    status = setup_env.status()
    print(f"install seconds per agent: {seconds}; total {(status.finished or 0) - (status.started or 0):.1f}")
    again = setup_env.run()
    assert again.returncode == 0
    assert set(setup_env.states().values()) == {"skipped"}
