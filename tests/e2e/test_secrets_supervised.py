"""Secrets at rest under scripts/run: no secret in any log file nor in any program's environment, logs
0600 in 0700 folders; and nothing a shell starts outlives the app."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APP_CLIENT_ID, APP_CLIENT_SECRET, OWNER_TOKEN, Stack
from tests.e2e.conftest import RunningApp, process_alive, start_app, stop_app
from tests.fake_workspace import FakeWorkspace
from tests.helpers import TermClient, free_port, wait_until

pytestmark = pytest.mark.slow


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def get(url: str, headers: dict[str, str] | None = None) -> int:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def process_tree(root: int) -> dict[int, int]:
    """pid → parent of every live process below `root`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    below: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in below:
                below[pid] = ppid
                frontier.append(pid)
    return below


def proc_file(pid: int, name: str) -> bytes:
    """/proc/<pid>/<name>; empty once the process is gone (a short-lived child may end meanwhile)."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def environ(pid: int) -> bytes:
    return proc_file(pid, "environ")


def assert_no_secret_in_any_environment(app: RunningApp, secrets: dict[str, str]) -> None:
    """scripts/run's own process, supervisord, every program and their children (tmux attach
    clients…) hold none; shells hold neither the local token nor the app's client secret."""
    tmux_server = app.program_pid("tmux")
    tree = process_tree(app.proc.pid)
    shells = set(process_tree(tmux_server))
    programs = {pid: proc_file(pid, "cmdline")[:80] for pid in tree if pid not in shells}
    assert tmux_server in programs and len(programs) >= 6, programs  # supervisord and 5 programs
    for pid in [app.proc.pid, *programs]:
        for name, value in secrets.items():
            assert value.encode() not in environ(pid), f"{name} in the environ of {programs.get(pid)!r}"
    for pid in shells:
        for name in ("local token", "client secret"):
            assert secrets[name].encode() not in environ(pid), f"{name} in a shell's environment"


def user_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def secrets_stack(stack: Stack, workspace: FakeWorkspace) -> dict[str, str]:
    """A laptop run with every kind of secret: the local token, a PAT, the app's client secret."""
    stack.env.update(
        DATABRICKS_HOST=workspace.url,
        DATABRICKS_TOKEN=OWNER_TOKEN,
        DATABRICKS_CLIENT_ID=APP_CLIENT_ID,
        DATABRICKS_CLIENT_SECRET=APP_CLIENT_SECRET,
        CODING_AGENTS_PROXY_PORT=str(free_port()),
    )
    return {"local token": stack.token, "PAT": OWNER_TOKEN, "client secret": APP_CLIENT_SECRET}


async def test_no_secret_in_any_log_or_program_environment(stack: Stack, workspace: FakeWorkspace) -> None:
    secrets = secrets_stack(stack, workspace)
    app = start_app(stack)
    try:
        # The start URL, a wrong path and an API call with the token in the query, a Bearer request.
        assert get(f"{app.url}/?token={stack.token}") == 302
        assert get(f"{app.url}/nothing-here?token={stack.token}") in (401, 404)
        assert get(f"{app.url}/api/sessions?token={stack.token}&cols=80") in (200, 401)
        assert get(f"{app.url}/api/sessions", {"Authorization": f"Bearer {stack.token}"}) == 200
        # Gemini-style clients put their key in the query: the model proxy must not log it either.
        proxy_key = (stack.state_dir / "model-proxy.key").read_text().strip()
        secrets["model proxy key"] = proxy_key
        proxy = f"http://127.0.0.1:{stack.settings.model_proxy_port}"
        wait_until(lambda: get(f"{proxy}/status", {"Authorization": f"Bearer {proxy_key}"}) == 200)
        get(f"{proxy}/a/gemini/gemini/v1beta/models/m:generateContent?key={proxy_key}&alt=sse")
        get(f"{proxy}/a/gemini/nope/x?key={proxy_key}")

        client = await TermClient.connect(app.url, "main", stack.token)
        await client.wait_ready()
        await client.type('echo "T[${CODING_AGENTS_TOKEN:-none}] S[${DATABRICKS_CLIENT_SECRET:-none}]"\r')
        await client.wait_text("T[none] S[none]")
        # The laptop user's own PAT still reaches their shells (tmux's global environment).
        await client.type('echo "P[${DATABRICKS_TOKEN:0:9}]"\r')
        await client.wait_text("P[dapi-owne]")
        # Only supervisord's own files are private: shells create files with the user's umask.
        await client.type('echo "U[$(umask)]"\r')
        await client.wait_text(f"U[{user_umask():04o}]")
        client.close()

        assert_no_secret_in_any_environment(app, secrets)

        # Every secret kept at rest is 0600 in a 0700 folder, every log too.
        secret_dir = stack.state_dir / "secrets"
        assert stat.S_IMODE(secret_dir.stat().st_mode) == 0o700
        assert sorted(p.name for p in secret_dir.iterdir()) == [
            "CODING_AGENTS_TOKEN",
            "DATABRICKS_CLIENT_SECRET",
            "DATABRICKS_TOKEN",
            "tmux-shell.conf",
        ]
    finally:
        stop_app(app)
    logs = stack.state_dir / "logs"
    files = [p for p in logs.rglob("*") if p.is_file()]
    assert len(files) >= 7, files
    for path in [logs, *logs.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
    for path in files:
        text = path.read_bytes()
        for name, value in secrets.items():
            assert value.encode() not in text, f"the {name} is in {path.relative_to(stack.state_dir)}"
    access = (logs / "gateway.log").read_text()
    assert "/?token=[redacted]" in access and "/nothing-here?token=[redacted]" in access, access[-2000:]


def sleepers(marker: str) -> list[int]:
    """Live processes whose command line names `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and process_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def procs(app: RunningApp) -> dict[str, Any]:
    out = app.ctl("procs", "--json")
    return dict(json.loads(out))


async def test_nothing_started_from_a_shell_outlives_the_app(stack: Stack) -> None:
    app = start_app(stack)
    marker = f"{int(time.time() * 1000) % 1_000_000 + 1_000_000}"  # a sleep duration no one else uses
    try:
        client = await TermClient.connect(app.url, "main", stack.token)
        await client.wait_ready()
        started = [
            f"nohup sleep {marker}1 >/dev/null 2>&1 &",
            f"setsid -f sleep {marker}2",
            # A daemon: double fork, new session, ignores SIGTERM and SIGHUP (needs the SIGKILL).
            f"(setsid sh -c 'trap \"\" TERM HUP; sleep {marker}3 & wait' </dev/null >/dev/null 2>&1 &)",
            # 64 MiB touched, for scripts/ctl procs to count in this pane.
            f"python3 -c 'import time; b = b\"x\" * (64 << 20); time.sleep({marker}4)' &",
        ]
        for command in started:
            await client.type(command + "\r")
        await client.type("echo launched$((6*7))\r")
        await client.wait_text("launched42")
        wait_until(lambda: len(sleepers(marker)) == 5, timeout=10, what="the sleepers and the daemon's shell")

        # scripts/ctl procs: the pane's tree holds the shell, the nohup sleep and the 64 MiB python.
        report = wait_until(
            lambda: (r := procs(app))["sessions"] and r["sessions"][0]["rss_bytes"] > 64 << 20 and r,
            timeout=10,
            what="procs sees the 64 MiB",
        )
        (main,) = report["sessions"]
        assert main["name"] == "main" and main["panes"][0]["processes"] >= 3, main
        assert main["panes"][0]["top"][0].startswith("python3 "), main  # the biggest, named
        names = {t["label"] for t in report["programs"]}
        app_processes = {"gateway", "model-proxy", "sync", "tmux", "watchdog", "supervisord"}
        assert app_processes | {"scripts/run (services.reaper)"} <= names, names
        adopted = sum(t["processes"] for t in report["left_behind"])
        assert adopted >= 3, report["left_behind"]  # setsid -f sleep, the daemon's sh and its sleep
        text = app.ctl("procs")
        assert "session main:" in text and "left behind" in text and "total:" in text, text

        left = sleepers(marker) + list(process_tree(app.proc.pid))
        client.close()
    except BaseException:
        stop_app(app)
        raise
    begin = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    try:
        # Databricks Apps sends SIGKILL 15 s after SIGTERM: everything must be gone before.
        wait_until(
            lambda: app.proc.poll() is not None and not any(process_alive(p) for p in left),
            timeout=15,
            what=f"every process gone: {[p for p in left if process_alive(p)]}",
        )
    finally:
        stop_app(app)
        for pid in sleepers(marker):  # only reached when the test failed: leave nothing behind
            os.kill(pid, signal.SIGKILL)
    print(f"stopped with {len(left)} processes in {time.monotonic() - begin:.2f} s")
    out = (stack.root / "run.out").read_text()
    assert re.search(r"stopping \d+ process\(es\) left behind", out), out[-2000:]
