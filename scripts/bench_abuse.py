"""`scripts/bench abuse`: the attacks of issue 12 against a private copy of the app (scripts/run).

Per attack: the gateway's RSS (peak while it ran) beside idle, the worst `/health` latency
meanwhile, how many hostile inputs were tried and how many got a clear answer (a status, a close
code, an error message, a log line) while the server kept serving. Local mode first, then Apps mode
(against the fake workspace) for the non-owner attack. Only 127.0.0.1; every loop is bounded in
count and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.gateway import protocol  # noqa: E402
from tests import abuse  # noqa: E402
from tests.fake_workspace import FakeWorkspace  # noqa: E402
from tests.helpers import TermClient, free_port, stack_env  # noqa: E402

TOKEN = "abuse-token-0123456789"
OWNER_TOKEN = "dapi-abuse-owner-0123456789"
OWNER_EMAIL = "owner@example.com"
PROXY_HOST = "abuse-app.example.com"
BODY = 4 << 20
RSS_BUDGET_MB = 64
HEALTH_TARGET_MS = 100
PING = b'{"type":"ping"}'


@dataclass
class App:
    root: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gateway_pid(self) -> int:
        out = subprocess.run(
            [str(ROOT / "scripts/ctl"), "pid", "gateway"], env=self.env, capture_output=True, text=True
        )
        return int(out.stdout.strip() or 0)

    def log(self) -> str:
        path = Path(self.env["CODING_AGENTS_STATE_DIR"]) / "logs" / "gateway.log"
        return path.read_text(errors="replace") if path.exists() else ""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def health_ms(url: str, headers: dict[str, str]) -> float | None:
    start = time.perf_counter()
    try:
        request = urllib.request.Request(url + "/health", headers=headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    except OSError:
        return None
    return (time.perf_counter() - start) * 1000


@dataclass
class Watch:
    """Samples the gateway's RSS and `/health` latency on a thread while an attack runs."""

    app: App
    health_headers: dict[str, str]
    pid: int = 0
    peak_rss: float = 0.0
    worst_ms: float = 0.0
    misses: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, rss_mb(self.pid))
        took = health_ms(self.app.url, self.health_headers)
        if took is None:
            self.misses += 1
        else:
            self.worst_ms = max(self.worst_ms, took)

    def run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.05)


@contextmanager
def watched(app: App, health_headers: dict[str, str]) -> Iterator[Watch]:
    watch = Watch(app, health_headers, pid=app.gateway_pid())
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch._stop.set()
        thread.join(10)
        watch.sample()  # at least one sample, however short the attack


def report(name: str, idle: float, watch: Watch, tried: int, clear: int) -> bool:
    grew = watch.peak_rss - idle
    worst = f"{watch.worst_ms:.0f} ms" + (f" ({watch.misses} unanswered)" if watch.misses else "")
    ok = grew <= RSS_BUDGET_MB and watch.misses == 0 and watch.worst_ms < HEALTH_TARGET_MS and clear == tried
    print(
        f"{name:<44} {watch.peak_rss:6.1f} MB (idle {idle:5.1f}, +{grew:5.1f})  "
        f"/health worst {worst:<22} {clear}/{tried} clear  {'ok' if ok else 'MISSED'}",
        flush=True,
    )
    return ok


def launch(env: dict[str, str], port: int, root: Path) -> App:
    proc = subprocess.Popen(
        [str(ROOT / "scripts/run")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    app = App(root, env, port, proc)
    deadline = time.monotonic() + 120
    while health_ms(app.url, {}) is None or app.gateway_pid() == 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            shut_down(app)
            raise SystemExit("the app did not start (scripts/run); see its logs")
        time.sleep(0.1)
    return app


def shut_down(app: App) -> None:
    if app.proc.poll() is None:
        app.proc.send_signal(signal.SIGTERM)
        try:
            app.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(app.proc.pid, signal.SIGKILL)
            app.proc.wait()
    shutil.rmtree(app.root, ignore_errors=True)


def private_env(apps: FakeWorkspace | None) -> tuple[Path, dict[str, str], int]:
    root = Path(tempfile.mkdtemp(prefix="ca-abuse-", dir="/tmp"))
    (root / "home").mkdir()
    port = free_port()
    env = stack_env(root / "home", root / "state", port, TOKEN)
    if apps is not None:
        del env["CODING_AGENTS_TOKEN"]
        env.update(
            DATABRICKS_APP_NAME="coding-agents-abuse",
            DATABRICKS_HOST=apps.url,
            DATABRICKS_TOKEN=OWNER_TOKEN,
            DATABRICKS_CLIENT_ID="abuse-sp",
            DATABRICKS_CLIENT_SECRET="abuse-sp-secret",
            DATABRICKS_WORKSPACE_ID="1",
        )
    return root, env, port


# --- the attacks: each returns (inputs tried, inputs answered clearly) -----------------------------


def nothing(seconds: float) -> tuple[int, int]:
    """The baseline row: /health and RSS sampled while nobody attacks."""
    time.sleep(seconds)
    return 0, 0


def in_threads(count: int, work: Callable[[int], bool]) -> int:
    """Run `work(i)` for i < count on `count` threads at once; how many returned True."""
    results = [False] * count

    def one(i: int) -> None:
        try:
            results[i] = work(i)
        except OSError:
            results[i] = False

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sum(results)


def big_bodies(port: int, headers: dict[str, str], expected: int, count: int = 50) -> tuple[int, int]:
    """`count` connections at once, each a POST declaring and sending a 4 MiB body."""
    declared = {"Content-Length": str(BODY), "Content-Type": "application/json", **headers}
    head = abuse.request_head("POST", "/api/sessions", port, declared)
    body = b"[" + b" " * (BODY - 2) + b"]"

    def one(_: int) -> bool:
        with abuse.connect(port) as sock:
            sock.sendall(head)
            status = abuse.read_status(sock, timeout=20)  # the answer comes before the body
            try:
                sock.settimeout(5)
                sock.sendall(body)  # the gateway has closed: this is refused or goes nowhere
            except OSError:
                pass
            return status == expected

    return count, in_threads(count, one)


def half_sent(app: App, count: int = 1000, wait: float = 40.0) -> tuple[int, int]:
    """`count` requests whose headers never end; how many the gateway closed on its own in time."""
    socks = []
    for _ in range(count):
        sock = abuse.connect(app.port)
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\nX-Slow: ".encode())
        socks.append(sock)
    deadline = time.monotonic() + wait
    closed = 0
    for sock in socks:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if sock.recv(1) == b"":
                closed += 1
        except ConnectionResetError:
            closed += 1
        except OSError:
            pass
        sock.close()
    return count, closed


def unread_frames(app: App, payload: bytes, logged: str, count: int = 800_000) -> tuple[int, int]:
    """A logged-in client sends `count` tiny frames and reads nothing; answered clearly if the
    gateway closed it with the reason it logs (`logged`)."""
    before = app.log().count(logged)
    sock = abuse.websocket(app.port, "/api/sessions/main/ws", {"Authorization": f"Bearer {TOKEN}"})
    try:
        sent = abuse.flood_frames(sock, abuse.text_frame(payload), count, 120.0)
    finally:
        sock.close()
    deadline = time.monotonic() + 30
    while app.log().count(logged) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    return sent, sent if app.log().count(logged) > before else 0


def pong_flood(app: App, posts: int = 1000) -> tuple[int, int]:
    """A long-poll client asks for as many pongs per POST as allowed, `posts` times, never polling;
    then once for more than a POST may carry."""
    conn = http_json(app, "POST", "/api/sessions/main/poll", b"")["conn"]
    path = f"/api/sessions/main/poll/{conn}"
    as_json = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    too_many = json.dumps([{"type": "ping"}] * (protocol.MAX_POLL_MESSAGES * 20)).encode()
    refused = status_of(app, "POST", path, as_json, too_many) == 400
    pings = json.dumps([{"type": "ping"}] * protocol.MAX_POLL_MESSAGES).encode()
    for _ in range(posts):
        http_json(app, "POST", path, pings)
    messages = http_json(app, "GET", path)["messages"]
    assert isinstance(messages, list)
    last = messages[-1] if messages else {}
    cut_off = last.get("type") == protocol.CLOSED and last.get("code") == protocol.CLOSE_NOT_READING
    tried = posts * protocol.MAX_POLL_MESSAGES
    return tried + 1, (tried if cut_off else 0) + refused


def http_json(app: App, method: str, path: str, body: bytes | None = None) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    request = urllib.request.Request(app.url + path, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=40) as response:
        text = response.read()
    return dict(json.loads(text)) if text else {}


def status_of(app: App, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> int:
    request = urllib.request.Request(app.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def small_ones(app: App) -> tuple[int, int]:
    """The inputs of item 4 that local mode can show, each with the clear answer it must get."""
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    as_json = {**bearer, "Content-Type": "application/json"}
    conn = http_json(app, "POST", "/api/sessions/main/poll", b"")["conn"]
    poll = f"/api/sessions/main/poll/{conn}"
    nested = b"[" * 100_000 + b"]" * 100_000
    nested_object = b'{"a":' * 5000 + b"1" + b"}" * 5000  # under the REST API's 64 KiB
    checks = {
        "NUL in a static path": status_of(app, "GET", "/static/index.html%00.css", bearer) in (400, 404),
        "nested JSON, long-poll": status_of(app, "POST", poll, as_json, nested) == 400,
        "nested JSON, REST": status_of(app, "POST", "/api/sessions", as_json, nested_object) == 400,
        "long-poll text/plain": status_of(app, "POST", poll, {**bearer, "Content-Type": "text/plain"}, b"[]")
        == 415,
        "/health foreign Host": status_of(app, "GET", "/health", {"Host": "evil.example"}) == 403,
        "page foreign Host": status_of(app, "GET", "/static/index.html", {"Host": "evil.example", **bearer})
        == 403,
        "foreign Origin": status_of(
            app, "POST", "/api/sessions", {**bearer, "Origin": "http://evil.example"}, b"{}"
        )
        == 403,
    }
    nested_ws, ctrl_c = asyncio.run(websocket_small_ones(app))
    checks.update({"nested JSON, WebSocket": nested_ws, "Ctrl-C at attach": ctrl_c})
    missed = [name for name, ok in checks.items() if not ok]
    if missed:
        print(f"  unclear answers: {', '.join(missed)}", flush=True)
    return len(checks), len(checks) - len(missed)


async def websocket_small_ones(app: App) -> list[bool]:
    # Nested JSON over the WebSocket: an error message, and the terminal still answers.
    client = await TermClient.connect(app.url, "main", TOKEN)
    await client.wait_ready()
    await client.conn.write_message("[" * 100_000 + "]" * 100_000)
    error = await client.wait_message(protocol.ERROR)
    await client.type("echo $((6*7))nested\r")
    await client.wait_text("42nested")
    nested_ok = "nested too deeply" in str(error.get("message")) and not client.closed
    client.close()
    # Ctrl-C the moment the attach client starts: it must survive.
    survived = 0
    for _ in range(5):
        client = await TermClient.connect(app.url, "main", TOKEN)
        for _ in range(20):
            await client.conn.write_message(b"\x03", binary=True)
        await client.wait_ready()
        try:
            await client.read_until(lambda c: c.closed, timeout=2)
        except AssertionError:
            survived += 1  # still open after 2 s
        client.close()
    return [nested_ok, survived == 5]


def forwarded_host(app: App) -> tuple[int, int]:
    owner = {"X-Forwarded-Email": OWNER_EMAIL, "X-Forwarded-Host": f"evil.example, {PROXY_HOST}"}
    same_site = {**owner, "Origin": f"https://{PROXY_HOST}"}
    checks = [
        status_of(app, "GET", "/api/sessions", owner) == 200,
        status_of(app, "POST", "/api/sessions", {**owner, "Origin": "https://evil.example"}, b"{}") == 403,
        status_of(app, "POST", "/api/sessions/main/poll", same_site) == 201,
    ]
    return len(checks), sum(checks)


def settle(app: App, seconds: float = 3.0) -> float:
    """Idle RSS: after the last attack's connections are gone."""
    time.sleep(seconds)
    return rss_mb(app.gateway_pid())


def local_mode() -> bool:
    root, env, port = private_env(None)
    app = launch(env, port, root)
    ok = True
    try:
        # One terminal attached first, as a user would have: the baseline includes a live session.
        asyncio.run(first_terminal(app))
        idle = settle(app, 1.0)
        print(f"{'attack (local mode)':<44} {'gateway RSS peak':<32} {'worst /health':<36} answers")
        attacks: list[tuple[str, Callable[[], tuple[int, int]]]] = [
            ("no attack, 10 s (the machine's own noise)", lambda: nothing(10.0)),
            ("50 unauthenticated 4 MiB bodies", lambda: big_bodies(port, {}, 401)),
            ("1000 half-sent requests", lambda: half_sent(app)),
            ("800k tiny bad frames, never read", lambda: unread_frames(app, b"x", "malformed messages")),
            ("800k pings, pongs never read", lambda: unread_frames(app, PING, "client not reading")),
            ("long-poll pong flood (1M pings, unpolled)", lambda: pong_flood(app)),
            ("item 4 inputs", lambda: small_ones(app)),
        ]
        for name, attack in attacks:
            with watched(app, {}) as watch:
                tried, clear = attack()
            # Beside the first idle figure: memory an attack leaves behind counts against the next.
            ok &= report(name, idle, watch, tried, clear)
    finally:
        shut_down(app)
    return ok


async def first_terminal(app: App) -> None:
    client = await TermClient.connect(app.url, "main", TOKEN)
    await client.wait_ready(30)
    await client.type("echo $((6*7))up\r")
    await client.wait_text("42up", 30)
    client.close()


def apps_mode() -> bool:
    workspace = FakeWorkspace()
    workspace.add_user(OWNER_TOKEN, OWNER_EMAIL, "Owner")
    workspace.start()
    root, env, port = private_env(workspace)
    app = launch(env, port, root)
    ok = True
    try:
        owner = {"X-Forwarded-Email": OWNER_EMAIL}
        deadline = time.monotonic() + 60
        while status_of(app, "GET", "/api/sessions", owner) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        idle = settle(app, 1.0)
        print(f"{'attack (Apps mode)':<44}")
        mallory = {"X-Forwarded-Email": "mallory@example.com", "X-Forwarded-Host": PROXY_HOST}
        attacks: list[tuple[str, Callable[[], tuple[int, int]]]] = [
            ("50 non-owner 4 MiB bodies", lambda: big_bodies(port, mallory, 403)),
            ("X-Forwarded-Host: evil, app", lambda: forwarded_host(app)),
        ]
        for name, attack in attacks:
            with watched(app, {}) as watch:
                tried, clear = attack()
            ok &= report(name, idle, watch, tried, clear)
    finally:
        shut_down(app)
        workspace.stop()
    return ok


def main() -> int:
    print(f"# scripts/bench abuse — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores")
    print(
        f"# targets: RSS within {RSS_BUDGET_MB} MiB of idle, /health < {HEALTH_TARGET_MS} ms, "
        "every input answered clearly"
    )
    ok = local_mode()
    ok &= apps_mode()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
