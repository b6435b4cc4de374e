"""Benchmark the terminal core; every figure is printed beside a baseline measured in this run.

Starts a private copy of the whole system with scripts/run (own port, state dir and HOME), then:
keystroke echo, flood throughput, cold start, reconnect and gateway memory, over WebSocket and over
the long-poll fallback. Then the workspace sync against the fake workspace. `scripts/bench sync` runs
only the sync part, `scripts/bench longpoll` only the WebSocket/long-poll echo and flood rows.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.gateway import protocol  # noqa: E402
from services.gateway.ptyio import set_winsize  # noqa: E402
from tests.helpers import TermClient, free_port, stack_env  # noqa: E402
from tests.longpoll_client import LongPollClient  # noqa: E402

TOKEN = "bench-token-0123456789"
KEYS = 300
FLOOD_ROUNDS = 7
LONGPOLL_FLOOD_ROUNDS = 5
COLS, ROWS = 120, 40  # every terminal in the benchmark, attached or not


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(label: str, value: str, baseline: str, target: str) -> None:
    print(f"{label:<44} {value:>22}   baseline {baseline:<22} target {target}")


def bare_pty_echo(samples: int) -> list[float]:
    """Keystroke -> echo through a bare PTY running bash (readline echo), no tmux, no web."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], {"PS1": "$ ", "TERM": "xterm-256color"})
    try:
        read_until(fd, b"$ ", 5)
        times = []
        for i in range(samples):
            key = b"abcdefghij"[i % 10 : i % 10 + 1]
            start = time.perf_counter()
            os.write(fd, key)
            read_until(fd, key, 5)
            times.append((time.perf_counter() - start) * 1000)
            if i % 50 == 49:
                os.write(fd, b"\x15")  # Ctrl-U keeps the line short
                time.sleep(0.01)
                drain(fd)
        return times
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"{needle!r} not seen")
        data += os.read(fd, 65536)
    return data


def drain(fd: int) -> None:
    while select.select([fd], [], [], 0)[0]:
        os.read(fd, 65536)


def bare_pty_seq() -> float:
    """`seq 1 2000000` writing into a bare PTY that is read as fast as possible."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("seq", ["seq", "1", "2000000"])
    try:
        while True:
            try:
                if not os.read(fd, 65536):
                    break
            except OSError:
                break
    finally:
        os.waitpid(pid, 0)
        os.close(fd)
    return time.perf_counter() - start


async def ws_echo(client: TermClient | LongPollClient, samples: int) -> list[float]:
    times = []
    for i in range(samples):
        key = "abcdefghij"[i % 10]
        before = len(client.output)
        start = time.perf_counter()
        await client.type(key)
        needle = key.encode()

        def echoed(c: TermClient | LongPollClient, since: int = before, k: bytes = needle) -> bool:
            return k in c.output[since:]

        await client.read_until(echoed, timeout=5)
        times.append((time.perf_counter() - start) * 1000)
        if i % 50 == 49:
            await client.type("\x15")
            await asyncio.sleep(0.02)
    return times


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def ctl_output(env: dict[str, str], *args: str) -> str:
    return subprocess.run([str(ROOT / "scripts/ctl"), *args], env=env, capture_output=True, text=True).stdout


def program_pid(env: dict[str, str], name: str) -> int:
    return int(ctl_output(env, "pid", name).strip() or 0)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_prompt(client: TermClient | LongPollClient, timeout: float = 10) -> None:
    await client.read_until(lambda c: re.search(r"[$#] $", c.text.rstrip("\r\n ") + " ") is not None, timeout)


async def timed_seq(client: TermClient, tag: str, frames: list[int] | None = None) -> float:
    """The flood as the shell times it, read by a client doing no more than a browser's socket would:
    on two cores every CPU-second this process spends is taken from tmux and the gateway. The number
    of output frames it took is appended to `frames`."""
    count = 0
    await client.type(f"s=$(date +%s%N); seq 1 2000000; echo {tag}=$(( ($(date +%s%N)-s)/1000000 ))ms\r")
    pattern = re.compile(rf"{tag}=(\d+)ms".encode())
    tail = b""
    unacked = 0
    while True:
        message = await asyncio.wait_for(client.conn.read_message(), 120)
        if message is None:
            raise ConnectionError("the terminal closed during the flood")
        if isinstance(message, str):
            continue
        count += 1
        unacked += len(message)
        if unacked >= protocol.ACK_EVERY:
            await client.send({"type": protocol.ACK, "bytes": unacked})
            unacked = 0
        tail = (tail + message)[-4096:]
        if match := pattern.search(tail):
            await client.send({"type": protocol.ACK, "bytes": unacked})
            if frames is not None:
                frames.append(count)
            return int(match.group(1)) / 1000


async def longpoll_seq(client: LongPollClient, tag: str, polls: list[int] | None = None) -> float:
    """timed_seq over long-poll: the client acks as output arrives, like the page after rendering.
    The number of polls that brought output is appended to `polls`."""
    await client.type(f"s=$(date +%s%N); seq 1 2000000; echo {tag}=$(( ($(date +%s%N)-s)/1000000 ))ms\r")
    pattern = re.compile(rf"{tag}=(\d+)ms".encode())
    tail = b""
    count = 0
    while True:
        data = await client.next_output(120)
        if data is None:
            raise ConnectionError("the long-poll connection closed during the flood")
        count += bool(data)
        tail = (tail + data)[-4096:]
        if match := pattern.search(tail):
            if polls is not None:
                polls.append(count)
            return int(match.group(1)) / 1000


async def connect_when_up(url: str) -> TermClient:
    """Retry until the gateway accepts a terminal connection and has replayed the screen."""
    while True:
        try:
            client = await TermClient.connect(url, "main", TOKEN, cols=COLS, rows=ROWS)
            await client.wait_ready(5)
            return client
        except Exception:
            await asyncio.sleep(0.02)


async def seq_without_client(tmux: list[str], tag: str) -> float:
    """The same flood in a session nobody is attached to (tmux still parses every byte)."""
    # The same size as the attached flood's window: a client of another size would have resized it.
    subprocess.run([*tmux, "resize-window", "-t", "=flood2:", "-x", str(COLS), "-y", str(ROWS)], check=True)
    command = f"s=$(date +%s%N); seq 1 2000000; echo {tag}=$(( ($(date +%s%N)-s)/1000000 ))ms"
    subprocess.run([*tmux, "send-keys", "-t", "=flood2:", command, "Enter"], check=True)
    pattern = re.compile(rf"{tag}=(\d+)ms")
    for _ in range(1200):
        out = subprocess.run([*tmux, "capture-pane", "-p", "-t", "=flood2:"], capture_output=True, text=True)
        if m := pattern.search(out.stdout):
            return int(m.group(1)) / 1000
        await asyncio.sleep(0.1)
    raise TimeoutError("the detached flood did not finish")


async def seq_with_raw_client(tmux: list[str], tag: str, reads: list[int]) -> float:
    """The flood with a bare `tmux attach` in a PTY drained as fast as it can read: what any client
    costs tmux itself, so the gateway's own share of the attached figure shows. The number of reads
    it took (one per write of tmux, near enough) is appended to `reads`."""
    pid, fd = pty.fork()
    if pid == 0:
        set_winsize(0, COLS, ROWS)  # a PTY starts at 0x0, which tmux would take as 80x24
        os.execvpe(
            tmux[0], [*tmux, "attach-session", "-t", "=flood2"], {**os.environ, "TERM": "xterm-256color"}
        )
    stop = threading.Event()
    count = [0]

    def pump() -> None:
        while not stop.is_set():
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    os.read(fd, 65536)
                except OSError:
                    return
                count[0] += 1

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        return await seq_without_client(tmux, tag)
    finally:
        stop.set()
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        thread.join()
        os.close(fd)
        reads.append(count[0])


async def longpoll_rows(url: str, tmux: list[str], ws: TermClient) -> None:
    """Keystroke echo and flood over the long-poll fallback beside the same over WebSocket (`ws`, at
    a prompt), interleaved in one run; long-poll in its own session of the same size."""
    subprocess.run([*tmux, "new-session", "-d", "-s", "lp", "-x", str(COLS), "-y", str(ROWS)], check=True)
    poll = await LongPollClient.connect(url, "lp", TOKEN, COLS, ROWS)
    try:
        await poll.wait_ready()
        await wait_prompt(poll)
        ws_times: list[float] = []
        poll_times: list[float] = []
        for _ in range(KEYS // 50):  # blocks taken in turn, so the machine's drift hits both alike
            ws_times += await ws_echo(ws, 50)
            poll_times += await ws_echo(poll, 50)
        w50, w99 = statistics.median(ws_times), percentile(ws_times, 99)
        p50, p99 = statistics.median(poll_times), percentile(poll_times, 99)
        row(
            "keystroke echo median / p99 (long-poll)",
            f"{p50:.2f} / {p99:.2f} ms",
            f"WS {w50:.2f} / {w99:.2f} ms",
            f"median <= {2 * w50:.2f} ms (2x WS)",
        )
        await ws.type("clear\r")
        await poll.type("clear\r")
        floods: dict[str, list[float]] = {"ws": [], "poll": []}
        polls: list[int] = []
        for i in range(LONGPOLL_FLOOD_ROUNDS):
            floods["ws"].append(await timed_seq(ws, f"W{i}"))
            floods["poll"].append(await longpoll_seq(poll, f"P{i}", polls))
        paired = statistics.median(p / w for p, w in zip(floods["poll"], floods["ws"], strict=True))
        row(
            f"seq 1 2000000, long-poll (median of {LONGPOLL_FLOOD_ROUNDS})",
            f"{statistics.median(floods['poll']):.2f} s",
            f"WS {statistics.median(floods['ws']):.2f} s",
            f"- ({paired:.2f}x WS per round, {statistics.median(polls):.0f} polls)",
        )
    finally:
        await poll.close()


def launch(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """scripts/run for a private copy of the system, in its own process group."""
    return subprocess.Popen(
        [str(ROOT / "scripts/run")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def shut_down(proc: subprocess.Popen[bytes], root: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def private_stack() -> tuple[Path, dict[str, str], str]:
    """A root dir, the environment and the URL of a private copy of the system."""
    root = Path(tempfile.mkdtemp(prefix="ca-bench-", dir="/tmp"))
    home = root / "home"
    home.mkdir()
    port = free_port()
    return root, stack_env(home, root / "state", port, TOKEN), f"http://127.0.0.1:{port}"


def tmux_command(env: dict[str, str]) -> list[str]:
    return [os.environ.get("CODING_AGENTS_TMUX", "tmux"), "-S", env["CODING_AGENTS_STATE_DIR"] + "/tmux.sock"]


async def longpoll_only() -> None:
    """`scripts/bench longpoll`: only the WebSocket/long-poll rows (the machine may be shared)."""
    root, env, url = private_stack()
    print(f"# scripts/bench longpoll — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores")
    proc = launch(env)
    try:
        while not healthy(url):
            await asyncio.sleep(0.01)
        client = await connect_when_up(url)
        await wait_prompt(client)
        await longpoll_rows(url, tmux_command(env), client)
        client.close()
    finally:
        shut_down(proc, root)


async def main() -> None:
    root, env, url = private_stack()
    print(f"# scripts/bench — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores")

    # Cold start: scripts/run until a prompt is on screen (deps installed already).
    start = time.perf_counter()
    proc = launch(env)
    try:
        while not healthy(url):
            await asyncio.sleep(0.01)
        client = await connect_when_up(url)
        await wait_prompt(client)
        cold = time.perf_counter() - start
        bash_start = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:
            os.execvpe("bash", ["bash", "--norc", "-i"], {"PS1": "$ ", "TERM": "xterm"})
        read_until(fd, b"$ ", 5)
        bare_start = time.perf_counter() - bash_start
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        row(
            "cold scripts/run -> first prompt",
            f"{cold:.2f} s",
            f"bare bash {bare_start * 1000:.0f} ms",
            "< 1.5 s",
        )

        # Keystroke echo.
        bare = bare_pty_echo(KEYS)
        ours = await ws_echo(client, KEYS)
        b50, b99 = statistics.median(bare), percentile(bare, 99)
        o50, o99 = statistics.median(ours), percentile(ours, 99)
        row(
            "keystroke echo median / p99 (WS+tmux)",
            f"{o50:.2f} / {o99:.2f} ms",
            f"PTY {b50:.2f} / {b99:.2f} ms",
            f"median <= {1.3 * b50 + 1:.2f} ms, p99 <= 5 ms",
        )

        # Flood with a client attached vs none, while another session's echo is measured.
        env_tmux = tmux_command(env)
        size = ["-x", str(COLS), "-y", str(ROWS)]
        subprocess.run([*env_tmux, "new-session", "-d", "-s", "flood2", *size], check=True)
        subprocess.run([*env_tmux, "new-session", "-d", "-s", "other", *size], check=True)
        await client.type("clear\r")
        detached = bare_pty_seq()
        # Medians of several rounds, the three kinds interleaved: on two cores one run swings by a third
        # with whatever else is scheduled, and drift over the minute would otherwise favour one kind.
        runs: dict[str, list[float]] = {"none": [], "raw": [], "ours": []}
        frames: list[int] = []
        raw_reads: list[int] = []
        for i in range(FLOOD_ROUNDS):
            runs["none"].append(await seq_without_client(env_tmux, f"N{i}"))
            runs["raw"].append(await seq_with_raw_client(env_tmux, f"R{i}", raw_reads))
            runs["ours"].append(await timed_seq(client, f"A{i}", frames))
        no_client, raw, attached = (statistics.median(runs[k]) for k in ("none", "raw", "ours"))
        row(
            f"seq 1 2000000, client attached (median of {FLOOD_ROUNDS})",
            f"{attached:.2f} s",
            f"no client {no_client:.2f} s",
            f"<= {1.2 * no_client:.2f} s (raw tmux client {raw:.2f} s, bare PTY {detached:.2f} s)",
        )
        # Each round's runs are seconds apart: their ratio is free of the machine's drift over the minute.
        paired = statistics.median(o / n for o, n in zip(runs["ours"], runs["none"], strict=True))
        paired_raw = statistics.median(r / n for r, n in zip(runs["raw"], runs["none"], strict=True))
        row(
            "  WebSocket frames per flood (median)",
            f"{statistics.median(frames):.0f}",
            f"raw client's reads {statistics.median(raw_reads):.0f}",
            "-",
        )
        row(
            "  same, per-round ratio to no client (median)",
            f"{paired:.2f}x",
            f"raw tmux client {paired_raw:.2f}x",
            "<= 1.2x",
        )
        other = await TermClient.connect(url, "other", TOKEN, cols=COLS, rows=ROWS)
        await other.wait_ready()
        flood = asyncio.create_task(timed_seq(client, "FLOOD"))
        during: list[float] = []
        while not flood.done():
            during += await ws_echo(other, 10)
        await flood
        row(
            "other session echo p99 during the flood",
            f"{percentile(during, 99):.2f} ms",
            f"idle p99 {o99:.2f} ms",
            "<= 20 ms",
        )
        await longpoll_rows(url, env_tmux, client)

        # Reconnect after a reload: time from connect to replay done.
        await client.type("clear; echo reconnect-marker\r")
        await client.wait_text("reconnect-marker")
        client.close()
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            again = await TermClient.connect(url, "main", TOKEN, cols=COLS, rows=ROWS)
            await again.wait_ready()
            times.append((time.perf_counter() - t0) * 1000)
            again.close()
        row("reconnect after reload -> screen shown", f"{statistics.median(times):.0f} ms", "-", "< 150 ms")

        # Memory with 10 attached sessions.
        gw = program_pid(env, "gateway")
        idle_rss = rss_mb(gw)
        clients = []
        for i in range(10):
            subprocess.run([*env_tmux, "new-session", "-d", "-s", f"m{i}", *size], check=True)
            c = await TermClient.connect(url, f"m{i}", TOKEN, cols=COLS, rows=ROWS)
            await c.wait_ready()
            await c.type(f"echo session{i}\r")
            clients.append(c)
        for i, c in enumerate(clients):
            await c.wait_text(f"session{i}")
        row(
            "gateway RSS, 10 attached sessions", f"{rss_mb(gw):.1f} MB", f"idle {idle_rss:.1f} MB", "<= 60 MB"
        )
        for c in clients:
            c.close()

        # Gateway kill: time until a new connection shows the screen again; then the same with the
        # watchdog stopped, i.e. supervisord's own respawn on its 1-second poll.
        async def kill_gateway() -> float:
            # Killed before its startsecs, supervisord would count a failed start and back off.
            while "RUNNING" not in ctl_output(env, "status", "gateway"):
                await asyncio.sleep(0.05)
            pid = program_pid(env, "gateway")
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            back = await connect_when_up(url)
            back.close()
            return time.perf_counter() - t0

        with_watchdog = await kill_gateway()
        ctl_output(env, "stop", "watchdog")
        supervisord_alone = await kill_gateway()
        row(
            "gateway kill -9 -> terminal back",
            f"{with_watchdog:.2f} s",
            f"no watchdog {supervisord_alone:.2f} s",
            "< 2 s",
        )
        other.close()
    finally:
        shut_down(proc, root)


def git_commit(repo: Path, env: dict[str, str], message: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, env=env, check=True)


def wait_for(check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the sync benchmark waited too long")
        time.sleep(0.002)


def sync_bench(samples: int = 15, big: int = 5000) -> None:
    """Workspace sync (services.sync as its own process) against the fake workspace on 127.0.0.1:
    commit -> file visible, beside a direct SDK upload of the same file; then one changed file in a
    `big`-file repo: how many uploads and how long, beside that repo's first full sync."""
    from databricks.sdk.service.workspace import ImportFormat

    from services.databricks import pat_client
    from tests.fake_workspace import FakeWorkspace

    root = Path(tempfile.mkdtemp(prefix="ca-bench-sync-", dir="/tmp"))
    home, state = root / "home", root / "state"
    projects = home / "projects"
    projects.mkdir(parents=True)
    workspace = FakeWorkspace()
    workspace.add_user("bench-pat", "bench@example.com", "Bench")
    workspace.start()
    env = stack_env(
        home, state, free_port(), TOKEN, DATABRICKS_HOST=workspace.url, DATABRICKS_TOKEN="bench-pat"
    )
    git_env = {**env, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b"}
    git_env["GIT_COMMITTER_EMAIL"] = "b@x"
    remote = "/Users/bench@example.com/projects"

    def visible(path: str, text: str) -> Callable[[], bool]:
        return lambda: workspace.files.get(path) == text.encode()

    small, large = projects / "small", projects / "large"
    for repo, count in ((small, 1), (large, big)):
        subprocess.run(["git", "init", "-q", str(repo)], env=git_env, check=True)
        git_commit(repo, git_env, "first", {f"d{i // 100}/f{i}.txt": f"file {i}\n" for i in range(count)})
    log_path = root / "sync.log"
    with Path(log_path).open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.sync"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        wait_for(
            lambda: "[large] synced" in log_path.read_text() and "[small] synced" in log_path.read_text()
        )
        full = re.search(r"\[large\] synced \w+ \((\d+) uploaded.*in ([\d.]+) s", log_path.read_text())
        assert full, log_path.read_text()

        client = pat_client(workspace.url, "bench-pat", 30)
        direct, ours = [], []
        for i in range(samples):
            text = f"direct {i}\n"
            start = time.perf_counter()
            client.workspace.upload(
                f"{remote}/small/d0/f0.txt", text.encode(), format=ImportFormat.AUTO, overwrite=True
            )
            direct.append((time.perf_counter() - start) * 1000)
            text = f"commit {i}\n"
            start = time.perf_counter()
            git_commit(small, git_env, f"c{i}", {"d0/f0.txt": text})
            wait_for(visible(f"{remote}/small/d0/f0.txt", text))
            ours.append((time.perf_counter() - start) * 1000)
        row(
            f"commit -> file in workspace (median of {samples})",
            f"{statistics.median(ours):.0f} ms",
            f"SDK upload {statistics.median(direct):.1f} ms",
            "< 2000 ms",
        )

        before = len(workspace.calls("/workspace/import"))
        start = time.perf_counter()
        git_commit(large, git_env, "one change", {"d7/f777.txt": "changed\n"})
        wait_for(visible(f"{remote}/large/d7/f777.txt", "changed\n"))
        one = time.perf_counter() - start
        wait_for(lambda: log_path.read_text().count("[large] synced") >= 2)
        uploads = [r for r in workspace.calls("/workspace/import")[before:] if b"/projects/large/" in r.body]
        row(
            f"{big}-file repo: first full sync",
            f"{full.group(2)} s",
            f"{full.group(1)} uploads",
            "-",
        )
        row(
            f"{big}-file repo: commit of one changed file",
            f"{len(uploads)} upload, {one * 1000:.0f} ms",
            f"full sync {full.group(2)} s",
            "1 upload",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        workspace.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    # `scripts/bench sync` runs only the workspace sync figures, `scripts/bench longpoll` only the
    # WebSocket/long-poll rows.
    if sys.argv[1:] == ["longpoll"]:
        asyncio.run(longpoll_only())
        sys.exit(0)
    if sys.argv[1:] not in ([], ["sync"]):
        sys.exit("usage: scripts/bench [sync | longpoll]")
    if sys.argv[1:] != ["sync"]:
        asyncio.run(main())
    sync_bench()
