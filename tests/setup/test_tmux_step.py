"""The setup step "tmux" and the tmux program without a tmux binary, under a real supervisord running
the `[program:tmux]` section of supervisord.conf as it is."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services import tmux_install
from services.config import PROJECT_ROOT, Settings
from services.setup.status import read_status, status_path
from services.supervisor_client import ProgramInfo, programs
from services.tmux import server_answers
from tests.helpers import (
    FileServer,
    free_port,
    gzipped_system_tmux,
    path_without_tmux,
    short_tempdir,
    wait_until,
)
from tests.setup.conftest import tools

pytestmark = pytest.mark.slow
ASSET = "/tmux.gz"
PAYLOAD, CHECKSUM = gzipped_system_tmux()
TMUX_STEP = "  tmux:\n    title: tmux\n    kind: builtin\n    run: tmux\n    timeout: 60\n"


def tmux_only_config() -> str:
    """supervisord.conf with only its tmux program (the others need a whole app)."""
    text = (PROJECT_ROOT / "supervisord.conf").read_text().replace("%(here)s", str(PROJECT_ROOT))
    sections = re.split(r"(?m)^(?=\[)", text)
    return "".join(s for s in sections if not s.startswith("[program:") or s.startswith("[program:tmux]"))


@dataclass
class Supervised:
    root: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return Path(self.env["CODING_AGENTS_STATE_DIR"]) / "supervisor.sock"

    @property
    def tmux_socket(self) -> Path:
        return Path(self.env["CODING_AGENTS_STATE_DIR"]) / "tmux.sock"

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def state(self) -> str:
        return programs(self.socket).get("tmux", ProgramInfo(0, "REMOVED")).state

    def setup(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.setup", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def supervised() -> Iterator[Supervised]:
    root = short_tempdir("cat-")
    home, state = root / "home", root / "state"
    (state / "logs").mkdir(parents=True)
    home.mkdir()
    (root / "registry.yaml").write_text(tools(TMUX_STEP))
    env = {
        "PATH": f"{Path(sys.executable).parent}:{path_without_tmux(root / 'bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "CODING_AGENTS_STATE_DIR": str(state),
        "CODING_AGENTS_PYTHON": sys.executable,
        "CODING_AGENTS_PLATFORM_LOG": str(state / "logs" / "platform.log"),
        "CODING_AGENTS_UMASK": "022",  # as scripts/run exports it
        "CODING_AGENTS_TMUX": str(home / ".local" / "bin" / "tmux"),  # as scripts/run exports it
        "CODING_AGENTS_REGISTRY": str(root / "registry.yaml"),
        "CODING_AGENTS_TMUX_URL": f"http://127.0.0.1:{free_port()}{ASSET}",  # nothing listens yet
        "CODING_AGENTS_TMUX_SHA256": CHECKSUM,
    }
    config = root / "supervisord.conf"
    config.write_text(tmux_only_config())
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "supervisord"), "-n", "-c", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = Supervised(root, env, proc)
    try:
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_no_tmux_is_a_clean_exit_then_the_step_installs_and_starts_it(supervised: Supervised) -> None:
    # No binary: tmuxd exits as expected (EXITED, not BACKOFF into FATAL) and stays down.
    wait_until(lambda: supervised.state() == "EXITED", timeout=20, what="tmux EXITED")
    supervisord_log = (supervised.socket.parent / "logs" / "supervisord.log").read_text()
    assert "exited: tmux (exit status 78; expected)" in supervisord_log  # so not restarted
    assert "gave up" not in supervisord_log and "FATAL" not in supervisord_log
    tmux_log = (supervised.socket.parent / "logs" / "tmux.log").read_text()
    assert "degraded mode" in tmux_log and tmux_log.count("tmux not found at") == 1

    # Unreachable URL: the step fails with the reason, and records it for the page.
    failed = supervised.setup("--only", "tmux")
    assert failed.returncode == 1
    record = tmux_install.read_record(supervised.settings)
    assert (
        record is not None and not record.ok and record.message.startswith("cannot reach http://127.0.0.1:")
    )

    # Reachable now: installed from the FileServer, then supervisord starts the tmux program.
    port = int(supervised.env["CODING_AGENTS_TMUX_URL"].split(":")[2].split("/")[0])
    with FileServer({ASSET: PAYLOAD}, port=port) as server:
        ok = supervised.setup("--only", "tmux")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert server.requests[ASSET] == 1
    wait_until(lambda: supervised.state() == "RUNNING", timeout=10, what="tmux RUNNING")
    assert server_answers(supervised.tmux_socket)
    record = tmux_install.read_record(supervised.settings)
    assert record is not None and record.ok and "installed tmux" in record.message

    # Everything in place: skipped without a download.
    again = supervised.setup("--only", "tmux")
    assert again.returncode == 0
    [step] = read_status(status_path(supervised.settings)).steps
    assert step.state.value == "skipped" and "its server is running" in step.reason


def test_the_step_outlasts_a_tmux_program_still_on_its_way_out(supervised: Supervised) -> None:
    """At a start the step runs while tmuxd, finding no binary, is still up (it stays 1.2 s before its
    expected exit): "already running" then means the dying program, and the step must start it again
    once it is gone rather than wait for a server that never comes."""
    port = int(supervised.env["CODING_AGENTS_TMUX_URL"].split(":")[2].split("/")[0])
    wait_until(lambda: supervised.state() in ("STARTING", "RUNNING"), timeout=10, what="tmuxd up")
    with FileServer({ASSET: PAYLOAD}, port=port):
        ok = supervised.setup("--only", "tmux")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    log = (supervised.settings.log_dir / "setup" / "tmux.log").read_text()
    assert "the tmux program is running; waiting for its server" in log, log  # it did meet the dying one
    assert server_answers(supervised.tmux_socket)
