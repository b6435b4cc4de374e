"""The Databricks Apps runtime, approximated: a non-root user, no tmux on PATH, HOME unset.

scripts/run must fetch tmux (from a local server standing in for the release URL), serve a working
terminal, and leave no process of that user behind after SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT
from tests.helpers import (
    FileServer,
    TermClient,
    async_wait_until,
    env_for_subprocess,
    free_port,
    gzipped_system_tmux,
    path_without_tmux,
    short_tempdir,
    wait_until,
)

pytestmark = pytest.mark.slow

USER = "coding-agents-ci"
TOKEN = "runtime-fit-token-0123456789"
ASSET = "/tmux.linux-amd64.stripped.gz"


def user_pids(uid: int) -> list[int]:
    """Live (non-zombie) processes whose real uid is uid."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line
            )
        except OSError:  # exited while we looked
            continue
        if int(status["Uid"].split()[0]) == uid and not status["State"].strip().startswith("Z"):
            pids.append(int(entry.name))
    return pids


def kill_user(uid: int) -> None:
    for pid in user_pids(uid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def ensure_user() -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(USER)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/bin/bash", USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(USER)


def user_python(account: pwd.struct_passwd) -> str | None:
    """A Python 3.11+ the user can execute (ours may live under root's 0700 home, e.g. pyenv)."""
    # Same minor version first: root's uv cache then already holds every wheel the lock needs.
    names = (f"python{sys.version_info.major}.{sys.version_info.minor}", "python3")
    candidates = [os.path.realpath(sys.executable)]
    candidates += [f"{folder}/{name}" for name in names for folder in ("/usr/local/bin", "/usr/bin")]
    for python in dict.fromkeys(c for c in candidates if os.access(c, os.X_OK)):
        with contextlib.suppress(OSError):  # e.g. EACCES under root's home
            probe = subprocess.run(
                [python, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
                cwd="/",
                env={"PATH": "/usr/bin:/bin"},
                capture_output=True,
                check=False,
                user=account.pw_uid,
                group=account.pw_gid,
                extra_groups=[],  # else the child keeps root's supplementary groups
            )
            if probe.returncode == 0:
                return python
    return None


def copy_project(dest: Path) -> None:
    """The working tree as it is now (tracked and new files, not ignored ones), plus web deps."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if not source.exists():
            continue  # deleted in the working tree, not yet in the index
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / name, follow_symlinks=False)
    subprocess.run(["cp", "-a", str(PROJECT_ROOT / "web" / "node_modules"), str(dest / "web")], check=True)


@dataclass
class Runtime:
    app_dir: Path
    account: pwd.struct_passwd
    proc: subprocess.Popen[bytes]
    server: FileServer
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def main_session_ready(self) -> bool:
        request = urllib.request.Request(
            self.url + "/api/sessions/main", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def output(self) -> str:
        logs = self.app_dir / ".coding-agents" / "logs"
        tails = [f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log"))]
        return "\n".join([self.log.read_text(errors="replace"), *tails])


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a system user and runs the app as that user")
    if shutil.which("useradd") is None:
        pytest.skip("useradd not available to create the unprivileged user")
    uv = shutil.which("uv") or str(PROJECT_ROOT / ".tools" / "bin" / "uv")
    if not os.access(uv, os.X_OK):
        pytest.skip("no uv to build the copy's venv (scripts/test installs it into .tools/)")
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("needs git and a checkout to copy the working tree")
    if not (PROJECT_ROOT / "web" / "node_modules").is_dir():
        pytest.skip("web/node_modules missing (scripts/test runs npm ci)")
    account = ensure_user()
    kill_user(account.pw_uid)  # leftovers of an interrupted earlier run
    python = user_python(account)
    if python is None:
        pytest.skip(f"no Python 3.11+ that {USER} can execute")

    with contextlib.ExitStack() as cleanup:
        base = short_tempdir("ca-rt-")
        cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        base.chmod(0o755)  # mkdtemp makes it 0700: the user must traverse it
        app_dir = base / "app"
        copy_project(app_dir)
        (app_dir / ".tools" / "bin").mkdir(parents=True)
        shutil.copy2(uv, app_dir / ".tools" / "bin" / "uv")  # env.sh's find_uv looks there
        # Built as root so the user's `uv sync` in scripts/run has nothing to do. Copies, not
        # hardlinks into root's uv cache: the chown below would otherwise change the cache's files.
        uv_env = {k: v for k, v in env_for_subprocess().items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
        uv_env |= {"UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy"}
        synced = subprocess.run(
            [uv, "sync", "--frozen", "--inexact", "--python", python, "-q"],
            cwd=app_dir,
            env=uv_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert synced.returncode == 0, synced.stderr
        # -h and -R's default -P: symlinks themselves change owner, their targets never do.
        subprocess.run(["chown", "-hR", f"{account.pw_uid}:{account.pw_gid}", str(app_dir)], check=True)

        path = path_without_tmux(base / "bin")
        assert shutil.which("tmux", path=path) is None
        # With HOME unset env.sh falls back to the app folder; its sockets must fit sun_path.
        assert len(str(app_dir / ".coding-agents" / "supervisor.sock").encode()) <= 107

        payload, checksum = gzipped_system_tmux()
        server = cleanup.enter_context(FileServer({ASSET: payload}))
        port = free_port()
        env = {  # no HOME, no CODING_AGENTS_STATE_DIR: both come from env.sh's fallbacks
            "PATH": path,
            "LANG": "C.UTF-8",
            "DATABRICKS_APP_PORT": str(port),
            "CODING_AGENTS_TOKEN": TOKEN,
            "CODING_AGENTS_TMUX_URL": server.url(ASSET),
            "CODING_AGENTS_TMUX_SHA256": checksum,
            # Not under test here, and the real registry would install ~1 GB of agents as this user.
            "CODING_AGENTS_SETUP": "off",
        }
        log = base / "run.out"
        with open(log, "ab") as out:  # append: supervisord opens /dev/stdout itself too
            proc = subprocess.Popen(
                [str(app_dir / "scripts" / "run")],
                cwd=app_dir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=account.pw_uid,
                group=account.pw_gid,
                extra_groups=[],
            )
        cleanup.callback(proc.wait)
        cleanup.callback(kill_user, account.pw_uid)
        runtime = Runtime(app_dir, account, proc, server, port, log)
        try:
            wait_until(runtime.main_session_ready, timeout=90, what="gateway with session main")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{runtime.output()}") from None
        yield runtime


async def test_scripts_run_fetches_tmux_as_a_plain_user_and_stops_on_sigterm(runtime: Runtime) -> None:
    client = await TermClient.connect(runtime.url, "main", TOKEN, cols=200)
    await client.wait_ready()
    await client.type("echo $((6*7))x\r")
    await client.wait_text("42x")
    app = runtime.app_dir
    await client.type('echo "home=$HOME tmux=$(command -v tmux)"\r')
    await client.wait_text(f"home={app} tmux={app}/.local/bin/tmux")
    installed = app / ".local" / "bin" / "tmux"
    assert installed.stat().st_uid == runtime.account.pw_uid
    assert runtime.server.requests[ASSET] == 1
    assert f"downloading tmux from {runtime.server.url(ASSET)}" in runtime.output()
    assert f"into {installed}" in runtime.output()

    started = time.monotonic()
    runtime.proc.send_signal(signal.SIGTERM)  # scripts/run exec'd supervisord: this is its pid
    uid = runtime.account.pw_uid
    await async_wait_until(
        lambda: runtime.proc.poll() is not None and not user_pids(uid),
        timeout=15,
        what=f"every process of {USER} gone",
    )
    assert time.monotonic() - started < 15
    client.close()
