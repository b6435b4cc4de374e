"""services.reaper on its own: orphans end with the command, signals and exit status pass through,
the platform-log FIFO is relayed to stdout, supervisord's socket is knocked on while it stops."""

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


def reaper(*command: str, relay: Path | None = None, knock: Path | None = None) -> subprocess.Popen[bytes]:
    args = (["--relay", str(relay)] if relay else []) + (["--knock", str(knock)] if knock else [])
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


# Stands in for supervisord: a control socket, woken through it once at start (supervisord's first
# poll would wait a second), and an exit only after a few more once stopping (it sees a program's exit
# only when its loop wakes).
KNOCKED = """
import signal, socket, sys, time
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen(16)
server.settimeout(0.01)
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(time.monotonic()))
print("up", flush=True)
before, after = 0, 0
while after < 3:
    try:
        server.accept()[0].close()
    except TimeoutError:
        if stopping and time.monotonic() - stopping[0] > 10:
            sys.exit(f"woken {after} times in 10 s of stopping")
        continue
    if stopping:
        after += 1
    else:
        before += 1
sys.exit(0 if before == 1 else f"woken {before} times before the stop, not once")
"""


def test_supervisords_socket_is_knocked_on_once_at_start_then_while_it_stops(tmp_path: Path) -> None:
    sock = tmp_path / "supervisor.sock"
    proc = reaper(sys.executable, "-c", KNOCKED, str(sock), knock=sock)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        time.sleep(0.3)  # running, not stopping: no knock but the start's may come in this while
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
    finally:
        stop(proc)
