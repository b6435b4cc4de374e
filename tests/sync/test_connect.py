"""The sync failing to connect at start is one plain line on the platform log (stderr, which
supervisord sends where Databricks Apps shows logs): the reason and the fix, once however often it
retries, and one more line when it gets through."""

from __future__ import annotations

import logging

import pytest

from services.platform_log import PREFIX
from tests.helpers import wait_until
from tests.sync.conftest import REMOTE_ROOT, Rig


class PlatformLog:
    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd = capfd
        self.lines: list[str] = []

    def read(self) -> list[str]:
        err = self.capfd.readouterr().err
        self.lines += [line for line in err.splitlines() if line.startswith(PREFIX)]
        return self.lines


def retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum("retrying in" in r.getMessage() for r in caplog.records if r.name == "sync")


@pytest.mark.parametrize("failure", ["unreachable", "token refused", "folder not creatable"])
def test_one_platform_line_with_the_fix_then_one_when_connected(
    rig: Rig, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.INFO, logger="sync")
    platform = PlatformLog(capfd)
    host = rig.workspace.url
    if failure == "unreachable":
        rig.workspace.stop()  # the port refuses connections
        port = host.rsplit(":", 1)[1]
        want = f"{PREFIX} sync cannot reach the workspace {host}: connection to 127.0.0.1:{port} refused"
        fix = "; check DATABRICKS_HOST in app.yaml and that the app can reach the workspace; the sync keeps"
    elif failure == "token refused":
        rig.workspace.mode = "unauthorized"
        want = f"{PREFIX} sync: the workspace {host} refused the owner's token: "
        fix = "; connect your workspace again in the app's page"
    else:
        rig.workspace.forbidden_dirs = r"/projects$"
        want = f"{PREFIX} sync cannot create or read /Workspace{REMOTE_ROOT}: "
        fix = "; the token's owner needs write access to that folder"
    rig.start()
    wait_until(lambda: retries(caplog) >= 2, timeout=40, what="two retries")
    lines = platform.read()
    assert len(lines) == 1, lines  # retries do not repeat it
    assert lines[0].startswith(want) and fix in lines[0], lines[0]
    assert "dapi" not in lines[0]  # never the token
    status = rig.status()
    assert status["state"] == "error" and status["reason"]

    if failure == "unreachable":
        rig.workspace.start()
    rig.workspace.mode, rig.workspace.forbidden_dirs = "ok", ""
    wait_until(lambda: len(platform.read()) == 2, timeout=30, what="the connected line")
    assert (
        platform.lines[1]
        == f"{PREFIX} sync connected to {host}: mirroring ~/projects to /Workspace{REMOTE_ROOT}"
    )
    wait_until(lambda: rig.status()["reason"] == "", what="the error cleared")
