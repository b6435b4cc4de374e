"""The GitHub CLI's download (the shipped agents.yaml entry, served from 127.0.0.1) verified against a
release-wide checksums list, and the "gh-git" step wiring git's github.com credentials to a real gh."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from services.config import PROJECT_ROOT
from services.github import helper_for
from services.setup.download import machine_arch
from tests.helpers import FileServer, wait_until
from tests.setup.conftest import SetupEnv
from tests.setup.test_installs import tar_gz_with

SHIPPED = yaml.safe_load((PROJECT_ROOT / "agents.yaml").read_text())["tools"]
VERSION = SHIPPED["gh"]["version"]
ARCH = machine_arch()
OTHER_ARCH = "arm64" if ARCH == "amd64" else "amd64"
ASSET = f"gh_{VERSION}_linux_{ARCH}.tar.gz"
SUMS = f"/gh_{VERSION}_checksums.txt"
FAKE_GH = f"#!/bin/sh\necho 'gh version {VERSION} (fake)'\n".encode()
# Laid out as the real release is: gh_<version>_linux_<arch>/bin/gh.
GH_TGZ = tar_gz_with(f"gh_{VERSION}_linux_{ARCH}/bin/gh", FAKE_GH)
GH_SHA = hashlib.sha256(GH_TGZ).hexdigest()


def checksums(*lines: tuple[str, str]) -> bytes:
    return "".join(f"{digest}  {name}\n" for digest, name in lines).encode()


# Several assets, ours neither first nor last: the first digest in the file is another file's.
RELEASE_SUMS = checksums(
    ("1" * 64, f"gh_{VERSION}_linux_{OTHER_ARCH}.tar.gz"),
    ("2" * 64, f"gh_{VERSION}_linux_386.tar.gz"),
    (GH_SHA, ASSET),
    ("3" * 64, f"gh_{VERSION}_macOS_arm64.zip"),
)


@pytest.fixture
def release() -> Iterator[FileServer]:
    with FileServer({f"/{ASSET}": GH_TGZ, SUMS: RELEASE_SUMS}) as server:
        yield server


def gh_registry(server: FileServer, pins: bool = False, sums_path: str = SUMS) -> str:
    """The shipped gh entry with its GitHub URLs pointed at `server` (and its pins dropped unless kept)."""
    entry: dict[str, Any] = dict(SHIPPED["gh"])
    entry["url"] = {arch: server.url(f"/gh_{{version}}_linux_{arch}.tar.gz") for arch in entry["url"]}
    entry["sha256_url"] = server.url(sums_path.replace(VERSION, "{version}"))
    if not pins:
        entry.pop("sha256")
    return yaml.safe_dump({"tools": {"gh": entry}})


def gh_version(setup_env: SetupEnv) -> str:
    gh = setup_env.home / ".local" / "bin" / "gh"
    return subprocess.run([str(gh)], capture_output=True, text=True, check=True).stdout


def test_gh_is_verified_against_the_line_naming_its_asset(setup_env: SetupEnv, release: FileServer) -> None:
    setup_env.registry(gh_registry(release))
    result = setup_env.run()
    assert result.returncode == 0, setup_env.status().step("gh").reason
    assert gh_version(setup_env) == f"gh version {VERSION} (fake)\n"
    assert release.requests[SUMS] == 1
    assert setup_env.run().returncode == 0
    assert setup_env.states() == {"gh": "skipped"}


def test_a_checksums_list_without_the_asset_fails_naming_it(setup_env: SetupEnv) -> None:
    others = checksums(("1" * 64, f"gh_{VERSION}_linux_{OTHER_ARCH}.tar.gz"), ("2" * 64, "gh.zip"))
    with FileServer({f"/{ASSET}": GH_TGZ, SUMS: others}) as server:
        setup_env.registry(gh_registry(server))
        assert setup_env.run().returncode == 1
        assert setup_env.status().step("gh").reason == (
            f"{server.url(SUMS)} lists no checksum for {ASSET} (it names 2 other files)"
        )
        assert server.requests[f"/{ASSET}"] == 0  # nothing fetched that could not be verified
    assert not (setup_env.home / ".local" / "bin" / "gh").exists()


def test_an_asset_that_does_not_match_its_line_installs_nothing(setup_env: SetupEnv) -> None:
    wrong = checksums(("1" * 64, f"gh_{VERSION}_linux_{OTHER_ARCH}.tar.gz"), ("f" * 64, ASSET))
    with FileServer({f"/{ASSET}": GH_TGZ, SUMS: wrong}) as server:
        setup_env.registry(gh_registry(server))
        assert setup_env.run().returncode == 1
    assert setup_env.status().step("gh").reason == (
        f"checksum mismatch for {ASSET}: expected {'f' * 64}, got {GH_SHA}"
    )
    assert not (setup_env.home / ".local" / "bin" / "gh").exists()


def test_the_pinned_digest_wins_for_the_pinned_asset(setup_env: SetupEnv, release: FileServer) -> None:
    """Our fake tarball under the real name: the list on the same server vouches for it, the pin does not."""
    setup_env.registry(gh_registry(release, pins=True))
    assert setup_env.run().returncode == 1
    reason = setup_env.status().step("gh").reason
    assert reason == f"checksum mismatch for {ASSET}: expected {SHIPPED['gh']['sha256'][ARCH]}, got {GH_SHA}"
    assert release.requests[SUMS] == 0


def test_a_mirror_url_of_another_name_is_looked_up_in_the_list(
    setup_env: SetupEnv, release: FileServer
) -> None:
    """CODING_AGENTS_GH_URL naming a file no pin covers: the published list must name that file."""
    renamed = "gh-mirrored.tar.gz"
    release.files[f"/{renamed}"] = GH_TGZ
    release.files[SUMS] = RELEASE_SUMS + checksums((GH_SHA, renamed))
    setup_env.registry(gh_registry(release, pins=True))
    setup_env.env["CODING_AGENTS_GH_URL"] = release.url(f"/{renamed}")
    assert setup_env.run().returncode == 0, setup_env.status().step("gh").reason
    assert release.requests[f"/{renamed}"] == 1 and release.requests[f"/{ASSET}"] == 0


@pytest.mark.parametrize(
    ("sha_file", "reason"),
    [
        (lambda digest: f"{digest}\n", None),  # a digest alone, as some projects publish it
        (lambda digest: f"{digest} *dist/micro.tar.gz\n", None),  # sha256sum -b of a path
        (lambda digest: f"{digest}\n{'0' * 64}\n", "holds 2 digests and names no file: which one is"),
        (lambda digest: f"{digest}  micro-other.tar.gz\n", "lists no checksum for micro.tar.gz"),
    ],
    ids=["digest-only", "binary-mode-path", "two-unnamed", "other-name"],
)
def test_a_sha_file_beside_the_asset(setup_env: SetupEnv, sha_file: Any, reason: str | None) -> None:
    tgz = tar_gz_with("micro-2.0.14/micro", b"#!/bin/sh\necho micro\n")
    body = sha_file(hashlib.sha256(tgz).hexdigest()).encode()
    with FileServer({"/micro.tar.gz": tgz, "/micro.tar.gz.sha": body}) as server:
        setup_env.registry(
            f"""
tools:
  micro:
    title: micro
    kind: download
    version: "2.0.14"
    binary: micro
    member: "micro-{{version}}/micro"
    url: {{{ARCH}: "{server.url("/micro.tar.gz")}"}}
    sha256_url: "{{url}}.sha"
"""
        )
        setup_env.run()
    step = setup_env.status().step("micro")
    if reason is None:
        assert step.state.value == "ok", step.reason
    else:
        assert step.state.value == "failed" and reason in step.reason


# --- git credentials through gh ------------------------------------------------------------------

GH_GIT = """
tools:
  gh-git:
    title: git credentials for github.com
    kind: builtin
    run: gh_git_credentials
"""


def debian_gh() -> str:
    gh = shutil.which("gh")
    assert gh is not None, "the GitHub CLI is needed: apt-get install gh (scripts/test installs it)"
    return gh


def git(setup_env: SetupEnv, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """git as a shell of the app runs it: this HOME only, never the machine's /etc/gitconfig."""
    environment = setup_env.env | {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"} | env
    return subprocess.run(
        ["git", *args], input=stdin, env=environment, capture_output=True, text=True, timeout=30, check=False
    )


def credential_fill(setup_env: SetupEnv, host: str, **env: str) -> dict[str, str]:
    result = git(setup_env, "credential", "fill", stdin=f"protocol=https\nhost={host}\n\n", **env)
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_git_asks_gh_for_github_and_leaves_other_hosts_alone(setup_env: SetupEnv) -> None:
    gh = debian_gh()
    setup_env.env["DATABRICKS_APP_NAME"] = "coding-agents-test"
    # The user's own helper for another host, answering with a stored password.
    store = setup_env.root / "store"
    store.write_text("https://someone:stored-secret@git.example.com\n")
    git(setup_env, "config", "--global", "credential.https://git.example.com.helper", f"store --file {store}")
    setup_env.registry(GH_GIT)
    assert setup_env.run().returncode == 0, setup_env.status().step("gh-git").reason
    assert setup_env.states() == {"gh-git": "ok"}

    answer = credential_fill(setup_env, "github.com", GH_TOKEN="dummy-gh-token-1234")
    assert answer["password"] == "dummy-gh-token-1234"
    assert credential_fill(setup_env, "git.example.com")["password"] == "stored-secret"
    config = git(setup_env, "config", "--global", "--get-all", "credential.https://github.com.helper").stdout
    assert config == f"\n{helper_for(gh)}\n"

    before = (setup_env.home / ".gitconfig").read_text()
    assert setup_env.run().returncode == 0  # a rerun changes nothing
    assert (setup_env.home / ".gitconfig").read_text() == before


def test_a_users_own_github_helper_is_kept(setup_env: SetupEnv) -> None:
    debian_gh()
    setup_env.env["DATABRICKS_APP_NAME"] = "coding-agents-test"
    git(setup_env, "config", "--global", "credential.https://github.com.helper", "cache")
    setup_env.registry(GH_GIT)
    assert setup_env.run().returncode == 0
    key = "credential.https://github.com.helper"
    assert git(setup_env, "config", "--global", "--get-all", key).stdout == "cache\n"
    log = (setup_env.settings.files.setup_logs / "gh-git.log").read_text()
    assert f"{key} kept: your own helper 'cache'" in log


def test_a_laptop_keeps_its_own_git_credentials(setup_env: SetupEnv) -> None:
    setup_env.registry(GH_GIT)
    assert setup_env.run().returncode == 0
    assert setup_env.states() == {"gh-git": "skipped"}
    assert not (setup_env.home / ".gitconfig").exists()


def test_a_locked_git_config_is_waited_for(setup_env: SetupEnv) -> None:
    """Another writer of ~/.gitconfig (the user, a git command): git refuses a second writer, gh-git waits."""
    debian_gh()
    setup_env.env["DATABRICKS_APP_NAME"] = "coding-agents-test"
    lock = setup_env.home / ".gitconfig.lock"
    lock.write_text("")
    setup_env.registry(GH_GIT)
    runner = setup_env.start()
    try:
        log = setup_env.settings.files.setup_logs / "gh-git.log"
        wait_until(lambda: "locked by another writer" in log.read_text(), timeout=30, what="the step waits")
        lock.unlink()
        assert runner.wait(timeout=60) == 0
    finally:
        runner.kill()
    assert setup_env.states() == {"gh-git": "ok"}
    assert "gh auth git-credential" in (setup_env.home / ".gitconfig").read_text()
