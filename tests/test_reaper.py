"""services.reaper on its own: orphans end with the command, signals and exit status pass through,
the platform-log FIFO is relayed to stdout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services import proctable
from services.config import PROJECT_ROOT
from tests.helpers import wait_until


def reaper(*command: str, relay: Path | None = None) -> subprocess.Popen[bytes]:
    args = ["--relay", str(relay)] if relay else []
    return subprocess.Popen(
        [sys.executable, "-m", "services.reaper", *args, "--", *command],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate()  # reaps it and closes its pipes


def with_marker(marker: str) -> list[int]:
    """`sleep` processes whose duration starts with `marker` (not the shell that started them)."""
    found = []
    for pid in proctable.snapshot():
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(f"sleep\0{marker}".encode()):
                found.append(pid)
        except OSError:
            continue
    return found


def test_orphans_end_with_the_command_even_when_they_ignore_sigterm() -> None:
    marker = f"{int(time.time() * 1000) % 1_000_000 + 3_000_000}"
    script = (
        f"setsid -f sleep {marker}1; "
        f"(trap '' TERM HUP; exec sleep {marker}2) & "  # ignores SIGTERM: needs the SIGKILL
        f"nohup sleep {marker}3 >/dev/null 2>&1 & "
        "sleep 2; exit 3"
    )
    proc = reaper("sh", "-c", script)
    try:
        wait_until(lambda: len(with_marker(marker)) == 3, timeout=10, what="three sleepers")
        assert proc.wait(timeout=10) == 3  # the command's own exit status
        assert with_marker(marker) == []
        assert b"stopping 3 process(es) left behind" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        for pid in with_marker(marker):
            os.kill(pid, signal.SIGKILL)
        stop(proc)


def test_sigterm_reaches_the_command_and_its_status_comes_back() -> None:
    proc = reaper(
        sys.executable,
        "-c",
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\nprint('up', flush=True)\ntime.sleep(60)",
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 7
    finally:
        stop(proc)


def test_the_fifo_is_relayed_to_stdout(tmp_path: Path) -> None:
    fifo = tmp_path / "platform.fifo"
    os.mkfifo(fifo, 0o600)
    proc = reaper("sh", "-c", f"echo '[coding-agents] a line for the platform' > {fifo}", relay=fifo)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == b"[coding-agents] a line for the platform\n"


def test_no_command_is_a_usage_error() -> None:
    proc = reaper()
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and b"no command given" in err
