"""The app in the Apps-like sandbox (tests/sandbox.py): staged like scripts/deploy stages it, installed
like the platform installs it, run as a non-root user with HOME unset and no tmux on PATH, reached
through a proxy that adds the identity headers."""

from __future__ import annotations

import contextlib
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
from tests.helpers import FileServer, TermClient, gzipped_system_tmux, wait_until

pytestmark = pytest.mark.slow

ASSET = "/tmux.linux-amd64.stripped.gz"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def create_session(proxy: AppsProxy, name: str) -> int:
    """POST /api/sessions as the page does: JSON, with the app's own Origin."""
    request = urllib.request.Request(
        proxy.url + "/api/sessions",
        method="POST",
        data=f'{{"name": "{name}"}}'.encode(),
        headers={"Content-Type": "application/json", "Origin": f"https://{proxy.public_host}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


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

        # Warm start: the platform's packages and the staged web assets, no uv, no npm.
        assert not (box.app_dir / ".venv").exists() and not (box.app_dir / ".tools").exists()
        assert not (box.app_dir / "web" / "node_modules").exists()
        assets = page_assets(proxy.url)
        assert any("/static/node_modules/@xterm/xterm/" in a for a in assets), assets
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
