"""An Apps-like sandbox: the Databricks Apps runtime as far as one machine can play it.

- the deploy set as scripts/deploy stages it (`python -m services.deploy --stage-only`): tracked
  files, requirements.txt, web/vendor, no .git, no node_modules, no .venv;
- the platform's install step: a fresh venv with `requirements.txt` installed, first on PATH, before
  the app's command runs (the runtime has Python and pip, not uv);
- a non-root user, HOME unset, no tmux on PATH, `DATABRICKS_APP_NAME`/`DATABRICKS_APP_PORT` set;
- the app's command, `bash scripts/run` (app.yaml), with its stdout as the platform log;
- a reverse proxy adding `X-Forwarded-Email`/`X-Forwarded-Host` (tests/apps_proxy.py), optionally
  swallowing WebSocket upgrades.

Used by tests/e2e/test_apps_sandbox.py and scripts/bench.py (cold start figures). Needs root (it
creates the user) and useradd.
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.config import PROJECT_ROOT
from tests.helpers import env_for_subprocess, free_port, short_tempdir

USER = "coding-agents-ci"
OWNER = "owner@example.com"
APP_NAME = "coding-agents-sandbox"
# This machine reaches the package registries through a CA of its own: the sandbox passes the usual
# variables on, as a locked-down workspace would set them (README, "Locked-down workspaces").
NETWORK_ENV = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
)


def unavailable() -> str | None:
    """Why the sandbox cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root: creates a system user and runs the app as that user"
    if shutil.which("useradd") is None:
        return "useradd not available to create the unprivileged user"
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        return "needs git and a checkout to stage the deploy set"
    if not (PROJECT_ROOT / "web" / "node_modules").is_dir():
        return "web/node_modules missing (scripts/test runs npm ci)"
    if find_uv() is None:
        return "no uv to play the platform's pip install (scripts/test installs it into .tools/)"
    return None


def find_uv() -> str | None:
    uv = shutil.which("uv") or str(PROJECT_ROOT / ".tools" / "bin" / "uv")
    return uv if os.access(uv, os.X_OK) else None


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


def path_without_tmux(folder: Path) -> str:
    """A PATH of one folder linking every system command except tmux."""
    folder.mkdir(parents=True, exist_ok=True)
    for system_dir in ("/usr/local/bin", "/usr/bin", "/bin"):
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(system_dir):
                link = folder / entry.name
                if entry.name != "tmux" and not link.is_symlink():
                    link.symlink_to(entry.path)
    return str(folder)


def stage(app_dir: Path) -> None:
    """The deploy set, as scripts/deploy stages it (upstream skills left out: they need GitHub)."""
    result = subprocess.run(
        [sys.executable, "-m", "services.deploy", "--stage-only", str(app_dir), "--skip-skills"],
        cwd=PROJECT_ROOT,
        env=env_for_subprocess(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"staging failed:\n{result.stdout}\n{result.stderr}"


def copy_tracked(app_dir: Path) -> None:
    """Today's deploy set before staging existed: the tracked files only (no requirements.txt or
    web/vendor), which makes scripts/run bootstrap uv, a venv and npm ci at every start."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.exists():
            (app_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, app_dir / name, follow_symlinks=False)


def platform_install(app_dir: Path, venv: Path, python: str) -> None:
    """What the Apps runtime does before the app's command: a venv with requirements.txt installed.

    uv plays pip here (the same wheels, from this machine's uv cache instead of the network); copies,
    not hardlinks into root's cache, because the chown afterwards would change the cache's files.
    """
    uv = find_uv()
    assert uv is not None
    env = {k: v for k, v in env_for_subprocess().items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env |= {"UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy"}
    for argv in (
        [uv, "venv", "-q", "--python", python, str(venv)],
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-r", "requirements.txt"],
    ):
        done = subprocess.run(argv, cwd=app_dir, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr


@dataclass
class Sandbox:
    """One app in the sandbox; `start()` runs its command, `stop()` sends SIGTERM like the platform."""

    base: Path
    account: pwd.struct_passwd
    path: str
    port: int = field(default_factory=free_port)
    proxy_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def app_dir(self) -> Path:
        return self.base / "app"

    @property
    def log(self) -> Path:
        return self.base / "platform.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def home(self) -> Path:
        return self.app_dir / ".home"  # HOME is unset: scripts/lib/env.sh's fallback

    @property
    def state_dir(self) -> Path:
        return self.home / ".coding-agents"

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        return {  # no HOME, USER or CODING_AGENTS_STATE_DIR: the runtime sets none of them
            "PATH": self.path,
            "LANG": "C.UTF-8",
            "DATABRICKS_APP_NAME": APP_NAME,
            "DATABRICKS_APP_PORT": str(self.port),
            "CODING_AGENTS_OWNER": OWNER,
            # Not DATABRICKS_APP_PORT + 1, which another test's server may hold.
            "CODING_AGENTS_PROXY_PORT": str(self.proxy_port),
            **{name: os.environ[name] for name in NETWORK_ENV if name in os.environ},
            **extra,
        }

    def start(self, extra: Mapping[str, str]) -> None:
        with Path(self.log).open("ab") as out:  # append: supervisord opens /dev/stdout itself too
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                ["bash", "scripts/run"],  # app.yaml's command
                cwd=self.app_dir,
                env=self.env(extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.account.pw_uid,
                group=self.account.pw_gid,
                extra_groups=[],
            )

    def stop(self, timeout: float = 15) -> float:
        """SIGTERM, then wait for every process of the user to end; seconds it took (∞ if it did not)."""
        if self.proc is None:
            return 0.0
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # scripts/run exec'd services.reaper: this is its pid
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and not user_pids(self.account.pw_uid):
                return time.monotonic() - started
            time.sleep(0.05)
        kill_user(self.account.pw_uid)
        self.proc.wait()
        return float("inf")

    def output(self) -> str:
        logs = self.state_dir / "logs"
        tails = [f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log"))]
        return "\n".join([self.log.read_text(errors="replace"), *tails])


def build(staged: bool = True) -> Sandbox:
    """A new sandbox folder with the app deployed in it, owned by the sandbox user; the caller
    removes `base` (shutil.rmtree) and stops the app."""
    account = ensure_user()
    kill_user(account.pw_uid)  # leftovers of an interrupted earlier run
    python = user_python(account)
    assert python is not None, f"no Python 3.11+ that {USER} can execute"
    base = short_tempdir("ca-apps-")
    base.chmod(0o755)  # mkdtemp makes it 0700: the user must traverse it
    app_dir = base / "app"
    bin_dirs = [path_without_tmux(base / "bin")]
    if staged:
        stage(app_dir)
        platform_install(app_dir, base / "venv", python)
        bin_dirs.insert(0, str(base / "venv" / "bin"))
    else:
        # Without staging, scripts/run bootstraps uv with the runtime's python3 (on PATH), then a venv
        # and npm ci: the cold start of every restart before this.
        copy_tracked(app_dir)
    # -h and -R's default -P: symlinks themselves change owner, their targets never do.
    subprocess.run(["chown", "-hR", f"{account.pw_uid}:{account.pw_gid}", str(base)], check=True)
    sandbox = Sandbox(base, account, ":".join(bin_dirs))
    # HOME falls back into the app folder; its sockets must fit sun_path.
    assert len(str(sandbox.state_dir / "supervisor.sock").encode()) <= 107
    return sandbox
