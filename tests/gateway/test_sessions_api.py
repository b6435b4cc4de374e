"""REST sessions API against a real tmux server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import Gateway
from tests.helpers import async_wait_until

HOSTILE = ["../x", "a;b", "$(id)", "x" * 200, "a b", "€", "main:0", "=main", ""]


async def test_list_shows_the_default_session(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/sessions")
    assert response.code == 200
    [main] = json.loads(response.body)["sessions"]
    assert main["name"] == "main"
    assert set(main) == {
        "name",
        "created",
        "clients",
        "last_activity",
        "command",
        "windows",
        "degraded",
        "bells",
        "output_at",
    }
    assert main["degraded"] is False
    assert main["clients"] == 0 and main["windows"] == 1
    assert main["command"] in ("bash", "sh")


async def test_create_named_and_unnamed(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/sessions", "POST", body=json.dumps({"name": "work_1"}))
    assert response.code == 201
    assert json.loads(response.body)["session"]["name"] == "work_1"
    response = await gateway.fetch("/api/sessions", "POST")
    assert response.code == 201
    assert json.loads(response.body)["session"]["name"] == "shell-1"
    names = [s["name"] for s in json.loads((await gateway.fetch("/api/sessions")).body)["sessions"]]
    assert names == ["main", "work_1", "shell-1"]


async def test_create_starts_in_projects_and_uses_the_size(gateway: Gateway) -> None:
    body = json.dumps({"name": "sized", "cols": 150, "rows": 45})
    assert (await gateway.fetch("/api/sessions", "POST", body=body)).code == 201
    [line] = gateway.ctx.sessions._run(
        "display-message", "-p", "-t", "=sized:", "#{pane_current_path} #{pane_width}x#{pane_height}"
    )
    assert line == f"{gateway.ctx.settings.projects_dir} 150x45"


async def test_duplicate_is_a_409(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/sessions", "POST", body=json.dumps({"name": "main"}))
    assert response.code == 409
    assert "already exists" in json.loads(response.body)["error"]


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n[:12]))
async def test_hostile_names_are_a_400_on_create(gateway: Gateway, name: str) -> None:
    response = await gateway.fetch("/api/sessions", "POST", body=json.dumps({"name": name or 5}))
    assert response.code == 400
    assert "name" in json.loads(response.body)["error"]
    sessions = json.loads((await gateway.fetch("/api/sessions")).body)["sessions"]
    assert [s["name"] for s in sessions] == ["main"]


@pytest.mark.parametrize("name", [n for n in HOSTILE if n], ids=lambda n: repr(n[:12]))
async def test_hostile_names_are_a_400_on_delete(gateway: Gateway, name: str) -> None:
    response = await gateway.fetch("/api/sessions/" + quote(name, safe=""), "DELETE")
    assert response.code == 400
    assert "invalid session name" in json.loads(response.body)["error"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{nope", "not valid JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"name": 5}', "'name' must be a string"),
        (b'{"name": "ok", "cols": 0, "rows": 5}', "cols"),
        (b'{"name": "ok", "cols": 80, "rows": "x"}', "rows"),
    ],
    ids=["malformed", "array", "name-number", "cols-zero", "rows-string"],
)
async def test_bad_bodies_are_a_400(gateway: Gateway, body: bytes, error: str) -> None:
    response = await gateway.fetch("/api/sessions", "POST", body=body)
    assert response.code == 400
    assert error in json.loads(response.body)["error"]


async def test_delete_kills_the_whole_process_group(gateway: Gateway) -> None:
    sessions = gateway.ctx.sessions
    await gateway.ctx.run_blocking(sessions.create, "victim")
    [pane_pid] = sessions.pane_pids("victim")
    # A background job that ignores SIGHUP would outlive a plain kill-session.
    sessions._run("send-keys", "-t", "=victim:", "trap '' HUP; sleep 1000 & echo BG=$!", "Enter")
    bg = await async_wait_until(
        lambda: next(
            (
                ln.split("=")[1]
                for ln in sessions._run("capture-pane", "-p", "-t", "=victim:")
                if ln.startswith("BG=")
            ),
            None,
        ),
        what="background pid",
    )
    response = await gateway.fetch("/api/sessions/victim", "DELETE")
    assert response.code == 204
    for pid in (pane_pid, int(str(bg))):
        await async_wait_until(lambda p=pid: not Path(f"/proc/{p}").exists(), what=f"pid {pid} gone")
    assert (await gateway.fetch("/api/sessions/victim")).code == 404


async def test_delete_unknown_is_a_404(gateway: Gateway) -> None:
    response = await gateway.fetch("/api/sessions/ghost", "DELETE")
    assert response.code == 404
    assert "ghost" in json.loads(response.body)["error"]


async def test_exact_name_matching(gateway: Gateway) -> None:
    # tmux resolves `-t ma` to `main` by prefix; the API must not.
    assert (await gateway.fetch("/api/sessions/ma", "DELETE")).code == 404
    assert (await gateway.fetch("/api/sessions/main")).code == 200


async def test_tmux_down_is_a_503_with_a_reason(gateway: Gateway) -> None:
    settings = gateway.ctx.settings
    await gateway.ctx.run_blocking(
        subprocess.run, [settings.tmux_bin, "-S", str(settings.tmux_socket), "kill-server"]
    )
    response = await gateway.fetch("/api/sessions")
    assert response.code == 503
    assert "tmux server is not running" in json.loads(response.body)["error"]
