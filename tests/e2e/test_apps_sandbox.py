"""The app in the Apps-like sandbox (tests/sandbox.py): staged like scripts/deploy stages it, installed
like the platform installs it, run as a non-root user with HOME unset and no tmux on PATH, reached
through a proxy that adds the identity headers."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from tests import sandbox
from tests.apps_proxy import AppsProxy
from tests.helpers import FileServer, TermClient, free_port, gzipped_system_tmux, wait_until
from tests.longpoll_client import LongPollClient

pytestmark = pytest.mark.slow

ASSET = "/tmux.linux-amd64.stripped.gz"
# Setup runs only the tmux step: the real registry would install ~1 GB of agents as the sandbox user.
TMUX_ONLY = "tools:\n  tmux:\n    title: tmux\n    kind: builtin\n    run: tmux\n    timeout: 60\n"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def post(proxy: AppsProxy, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    """POST JSON as the page does, with the app's own Origin."""
    request = urllib.request.Request(
        proxy.url + path,
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Origin": f"https://{proxy.public_host}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def create_session(proxy: AppsProxy, name: str) -> int:
    return post(proxy, "/api/sessions", {"name": name})[0]


def get_json(url: str) -> dict[str, object]:
    status, body = get(url)
    assert status == 200, body[:300]
    return dict(json.loads(body))


def page_assets(base: str) -> set[str]:
    """Every /static/... file the page loads: from index.html and, transitively, the JS modules."""
    status, index = get(base + "/")
    assert status == 200, index[:300]
    found: set[str] = set()
    queue = re.findall(r'(?:href|src)="(/static/[^"]+)"', index.decode())
    while queue:
        path = queue.pop()
        if path in found:
            continue
        found.add(path)
        if path.endswith((".js", ".mjs")):
            status, body = get(base + path)
            assert status == 200, path
            folder = path.rsplit("/", 1)[0]
            for ref in re.findall(r'(?:import|from)\s*\(?\s*["\'](\.{0,2}/[^"\']+)["\']', body.decode()):
                if ref.startswith("/"):
                    queue.append(ref)
                else:
                    queue.append(str(urllib.parse.urljoin(folder + "/", ref)))
    return found


@pytest.fixture
def box() -> Iterator[sandbox.Sandbox]:
    why = sandbox.unavailable()
    if why:
        pytest.skip(why)
    built = sandbox.build(staged=True)
    try:
        yield built
    finally:
        built.stop()
        shutil.rmtree(built.base, ignore_errors=True)


async def test_a_staged_deploy_serves_a_tmux_terminal_to_its_owner_only(box: sandbox.Sandbox) -> None:
    payload, checksum = gzipped_system_tmux()
    with contextlib.ExitStack() as stack:
        tmux_server = stack.enter_context(FileServer({ASSET: payload}))
        proxy = stack.enter_context(AppsProxy(box.port, sandbox.OWNER))
        stranger = stack.enter_context(AppsProxy(box.port, "someone.else@example.com"))
        box.start(
            {
                "CODING_AGENTS_TMUX_URL": tmux_server.url(ASSET),
                "CODING_AGENTS_TMUX_SHA256": checksum,
                # The real registry would install ~1 GB of agents as the sandbox user.
                "CODING_AGENTS_SETUP": "off",
            }
        )
        try:
            wait_until(
                lambda: get(proxy.url + "/api/sessions/main")[0] == 200, timeout=60, what="session main"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{box.output()}") from None
        client = await TermClient.connect(proxy.url, "main", None, cols=200)
        await client.wait_ready()
        await client.type("echo $((6*7))x\r")
        await client.wait_text("42x")
        print(f"app command → first answer in the terminal: {time.monotonic() - box.started_at:.2f} s")

        # Which build answers: the deploy's VERSION (no .git here), in /health and the start log.
        version = (box.app_dir / "VERSION").read_text().strip()
        assert "+" in version and get_json(proxy.url + "/health")["version"] == version
        assert f"coding-agents {version} listening on" in box.output()

        # Warm start: the platform's packages and the staged web assets, no uv, no npm.
        assert not (box.app_dir / ".venv").exists() and not (box.app_dir / ".tools").exists()
        assert not (box.app_dir / "web" / "node_modules").exists()
        assets = page_assets(proxy.url)
        # Versioned URLs (/static/v/<hash>/node_modules/...), served from the staged web/vendor.
        assert any("/node_modules/@xterm/xterm/" in a for a in assets), assets
        for asset in assets:
            assert get(proxy.url + asset)[0] == 200, asset

        # The shells' own home, user and tmux.
        await client.type('echo "home=$HOME user=$USER/$LOGNAME tmux=$(command -v tmux)"\r')
        home = box.home
        await client.wait_text(f"home={home} user={sandbox.USER}/{sandbox.USER} tmux={home}/.local/bin/tmux")
        assert tmux_server.requests[ASSET] == 1
        await client.type("ls -A ~ | tr '\\n' ' '; echo :listed\r")
        await client.wait_text(":listed")
        listing = client.text.rsplit("ls -A", 1)[-1]
        assert "supervisord.conf" not in listing and "services" not in listing, listing

        # An agent "cleaning up" ~ must not break the app.
        await client.type("rm -rf ~/* && echo cleaned\r")
        await client.wait_text("cleaned")
        client.close()
        assert create_session(proxy, "after") == 201
        after = await TermClient.connect(proxy.url, "after", None)
        await after.wait_ready()
        await after.type("echo $((5*5))ok\r")
        await after.wait_text("25ok")
        after.close()

        # Only the owner gets in.
        status, body = get(stranger.url + "/api/sessions")
        assert status == 403 and b"owner@example.com" in body

        # The platform log has what happened at start, and no error.
        log = box.log.read_text()
        assert f"downloading tmux from {tmux_server.url(ASSET)}" in log
        assert "error" not in log.lower(), log

    assert box.stop() < 15, box.output()


async def test_without_tmux_the_terminal_still_works_over_long_poll_then_tmux_arrives(
    box: sandbox.Sandbox,
) -> None:
    """The tmux download fails and the proxy swallows WebSocket upgrades: the owner still gets a
    terminal (degraded, over long-poll), the platform log says why, and the page's Retry of the
    "tmux" step brings tmux in for new sessions without a restart."""
    payload, checksum = gzipped_system_tmux()
    tmux_port = free_port()  # nothing listens there yet
    tmux_url = f"http://127.0.0.1:{tmux_port}{ASSET}"
    registry = box.base / "agents.yaml"
    registry.write_text(TMUX_ONLY)
    registry.chmod(0o644)
    with AppsProxy(box.port, sandbox.OWNER, block_websocket=True) as proxy:
        box.start(
            {
                "CODING_AGENTS_TMUX_URL": tmux_url,
                "CODING_AGENTS_TMUX_SHA256": checksum,
                "CODING_AGENTS_REGISTRY": str(registry),
            }
        )
        try:
            wait_until(lambda: get(proxy.url + "/health")[0] == 200, timeout=60, what="gateway up")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{box.output()}") from None
        health = get_json(proxy.url + "/health")
        assert health["terminal"] == "degraded", health
        assert str(health["terminal_reason"]).startswith(f"cannot reach {tmux_url} ("), health

        # The WebSocket never opens here; long-poll is the whole terminal.
        wait_until(lambda: get(proxy.url + "/api/sessions/main")[0] == 200, timeout=30, what="main")
        client = await LongPollClient.connect(
            proxy.url, "main", None, cols=120, rows=30, origin=f"https://{proxy.public_host}"
        )
        await client.wait_ready()
        await client.type("echo $((6*7))x; echo TMUX=${TMUX:-none}\r")
        await client.read_until(lambda c: "42x" in c.text and "TMUX=none" in c.text)
        await client.close()

        # One line on the platform log with the reason and the fix.
        lines = [line for line in box.log.read_text().splitlines() if "tmux unavailable" in line]
        assert len(lines) == 1 and lines[0].startswith("[coding-agents] tmux unavailable: cannot reach")
        assert "set CODING_AGENTS_TMUX_URL and CODING_AGENTS_TMUX_SHA256" in lines[0]

        def tmux_step() -> dict[str, object]:
            steps = get_json(proxy.url + "/api/setup-status")["steps"]
            assert isinstance(steps, list)
            return dict(next(s for s in steps if s["id"] == "tmux"))

        wait_until(lambda: tmux_step()["state"] == "failed", timeout=60, what="tmux step failed")
        with FileServer({ASSET: payload}, port=tmux_port):
            # 409 while the first run is still exiting (supervisord has it RUNNING a moment longer).
            wait_until(
                lambda: post(proxy, "/api/setup/retry", {"step": "tmux"})[0] == 202,
                timeout=20,
                interval=0.2,
                what="retry accepted",
            )
            try:
                wait_until(lambda: tmux_step()["state"] == "ok", timeout=60, what="tmux step ok")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {tmux_step()}\n{box.output()}") from None
        code, created = post(proxy, "/api/sessions", {"name": "later"})
        assert code == 201 and created["session"]["degraded"] is False, created  # type: ignore[index]
        later = await LongPollClient.connect(
            proxy.url, "later", None, cols=120, rows=30, origin=f"https://{proxy.public_host}"
        )
        await later.wait_ready()
        await later.type("echo TMUX=${TMUX:-none}:\r")
        await later.read_until(lambda c: f"TMUX={box.state_dir}/tmux.sock" in c.text)
        await later.close()
        assert proxy.swallowed_upgrades == 0  # our clients never tried; the page's fallback is its own test
        wait_until(lambda: get_json(proxy.url + "/health")["terminal"] == "tmux", timeout=20, what="tmux")

    assert box.stop() < 15, box.output()
