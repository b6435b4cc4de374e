"""Every program starts through services/entry.py: one log format, and a bad setting is one line on
the platform log (stderr) with the fix, and exit status 2, whichever program meets it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT, ConfigError, Settings
from services.platform_log import CONFIG_FIX
from tests.helpers import stack_env

PROGRAMS = {
    "services.gateway": "gateway",
    "services.model_proxy": "model-proxy",
    "services.sync": "sync",
    "services.tmuxd": "tmuxd",
    "services.watchdog": "watchdog",
    "services.setup": "setup",
    "services.setup.configure": "configure",
}


@pytest.mark.parametrize("module", PROGRAMS)
def test_a_bad_setting_is_announced_and_exits_2(tmp_path: Path, module: str) -> None:
    env = stack_env(
        tmp_path / "home", tmp_path / "state", 8000, "t0ken-for-tests", DATABRICKS_APP_PORT="eighty"
    )
    done = subprocess.run(
        [sys.executable, "-m", module], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    expected = f"[coding-agents] {PROGRAMS[module]} cannot start: DATABRICKS_APP_PORT must be a port number"
    assert done.stderr.splitlines() == [f"{expected}, got 'eighty'; {CONFIG_FIX}"]
    # The same line, in the program's own log format, on stdout (its full log under supervisord).
    assert f" {PROGRAMS[module]} platform WARNING " in done.stdout


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("CODING_AGENTS_SETUP", "maybe", "CODING_AGENTS_SETUP must be on or off, got 'maybe'"),
        ("CODING_AGENTS_PROXY_PROBE_SECONDS", "soon", "must be a number of seconds above 0, got 'soon'"),
        ("CODING_AGENTS_PROXY_PROBE_SECONDS", "0", "must be a number of seconds above 0, got '0'"),
        ("CODING_AGENTS_SYNC_SCAN_SECONDS", "often", "must be a number of seconds above 0, got 'often'"),
        ("CODING_AGENTS_SYNC_CONCURRENCY", "0", "must be a whole number from 1 to 64, got '0'"),
        ("CODING_AGENTS_SYNC_MAX_BACKOFF_SECONDS", "-1", "must be a number of seconds above 0, got '-1'"),
    ],
)
def test_settings_read_once_refuse_bad_values(tmp_path: Path, name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"HOME": str(tmp_path), name: raw})


def test_on_off_settings(tmp_path: Path) -> None:
    assert Settings.from_env({"HOME": str(tmp_path)}).setup_enabled
    assert not Settings.from_env({"HOME": str(tmp_path), "CODING_AGENTS_SETUP": "OFF"}).setup_enabled
    probe = Settings.from_env({"HOME": str(tmp_path), "CODING_AGENTS_PROXY_PROBE_SECONDS": "0.5"})
    assert probe.proxy_probe_seconds == 0.5
    sync = Settings.from_env({"HOME": str(tmp_path), "CODING_AGENTS_SYNC_CONCURRENCY": "8"}).sync
    assert (sync.concurrency, sync.scan_seconds, sync.bundle_idle_seconds, sync.max_backoff_seconds) == (
        8,
        30,
        5,
        60,
    )
