"""`dbx-run`: the real command (the wrapper tmuxd writes into the shells' PATH) against the fake
workspace's Jobs API, which really runs the submitted file (tests/fake_jobs.py)."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.identity import write_databrickscfg
from services.shell_env import shell_path
from services.tmux import TmuxSessions
from services.tmuxd.__main__ import write_dbx_run_command
from tests.conftest import OWNER_EMAIL, OWNER_TOKEN, Stack
from tests.fake_workspace import FakeWorkspace
from tests.helpers import env_for_subprocess, start_tmuxd, wait_until
from tests.test_tmuxd import capture

UPLOADS = f"/Users/{OWNER_EMAIL}/.coding-agents/dbx-run"


@dataclass
class Terminal:
    """What a shell in the app's terminal has: HOME with ~/projects, the workspace's credentials."""

    command: Path
    projects: Path
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.command), *args],
            cwd=self.projects,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def terminal(stack: Stack, workspace: FakeWorkspace) -> Terminal:
    settings = stack.settings
    settings.state_bin.mkdir(parents=True)
    write_dbx_run_command(settings)
    projects = stack.home / "projects" / "demo"
    projects.mkdir(parents=True)
    env = env_for_subprocess() | {
        "HOME": str(stack.home),
        "DATABRICKS_HOST": workspace.url,
        "DATABRICKS_TOKEN": OWNER_TOKEN,
        "DBX_RUN_POLL_SECONDS": "0.05",
    }
    return Terminal(settings.state_bin / "dbx-run", projects, env)


def test_python_file_runs_and_its_output_comes_back(terminal: Terminal, workspace: FakeWorkspace) -> None:
    script = terminal.projects / "job.py"
    script.write_text("import sys\nprint('squares', [int(a) ** 2 for a in sys.argv[1:]])\n")
    result = terminal.run("--pip", "pandas==2.2.3", "job.py", "3", "4")
    assert result.returncode == 0, result.stderr
    assert "squares [9, 16]" in result.stdout
    assert f"{workspace.url}/?o=1234567890#job/0/run/" in result.stderr  # the URL, before the end
    assert result.stderr.index("#job/0/run/") < result.stderr.index("SUCCESS")
    assert "PENDING" in result.stderr and "RUNNING" in result.stderr
    assert workspace.files[f"{UPLOADS}/demo/job.py"] == script.read_bytes()
    (request,) = workspace.jobs.submitted()
    task = request["tasks"][0]
    assert task["spark_python_task"] == {
        "python_file": f"/Workspace{UPLOADS}/demo/job.py",
        "parameters": ["3", "4"],
        "source": "WORKSPACE",
    }
    (environment,) = request["environments"]
    assert environment["environment_key"] == task["environment_key"]
    assert environment["spec"] == {"environment_version": "5", "dependencies": ["pandas==2.2.3"]}
    assert "existing_cluster_id" not in task and "new_cluster" not in task  # serverless
    assert request["idempotency_token"]


def test_a_failing_run_exits_1_with_its_error(terminal: Terminal, workspace: FakeWorkspace) -> None:
    (terminal.projects / "boom.py").write_text("print('before')\nraise SystemExit('the data is missing')\n")
    result = terminal.run(str(terminal.projects / "boom.py"))
    assert result.returncode == 1, result.stderr
    assert "before" in result.stdout
    assert "dbx-run: FAILED" in result.stderr
    assert "error: the data is missing" in result.stderr


def test_notebook_runs_with_widget_values(terminal: Terminal, workspace: FakeWorkspace) -> None:
    cells = [
        {"cell_type": "markdown", "source": ["# title"]},
        {"cell_type": "code", "source": ["import sys\n", "print('nb', *sys.argv[1:])\n"]},
    ]
    (terminal.projects / "analysis.ipynb").write_text(json.dumps({"cells": cells, "nbformat": 4}))
    result = terminal.run("analysis.ipynb", "day=2026-12-06")
    assert result.returncode == 0, result.stderr
    assert "notebook result: nb day=2026-12-06" in result.stderr
    assert workspace.formats[f"{UPLOADS}/demo/analysis"] == "JUPYTER"
    (request,) = workspace.jobs.submitted()
    assert request["tasks"][0]["notebook_task"] == {
        "notebook_path": f"/Workspace{UPLOADS}/demo/analysis",
        "base_parameters": {"day": "2026-12-06"},
        "source": "WORKSPACE",
    }


def test_a_databricks_source_notebook_runs_as_a_notebook(
    terminal: Terminal, workspace: FakeWorkspace
) -> None:
    source = "# Databricks notebook source\nprint('cell one')\n\n# COMMAND ----------\n\nprint('two')\n"
    (terminal.projects / "etl.py").write_text(source)
    result = terminal.run("etl.py")
    assert result.returncode == 0, result.stderr
    assert workspace.formats[f"{UPLOADS}/demo/etl"] == "SOURCE"
    (request,) = workspace.jobs.submitted()
    assert request["tasks"][0]["notebook_task"]["notebook_path"] == f"/Workspace{UPLOADS}/demo/etl"
    assert "environments" not in request


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["missing.py"], "missing.py: no such file"),
        ({"notes.txt": "x"}, ["notes.txt"], "not a Python file (.py) or a notebook (.ipynb)"),
        ({}, ["/etc/hostname"], "not under"),
        ({"nb.ipynb": "{}"}, ["nb.ipynb", "positional"], "notebook arguments are KEY=VALUE"),
        ({"nb.ipynb": "{}"}, ["--pip", "x", "nb.ipynb"], "a notebook installs its own with %pip"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    terminal: Terminal, workspace: FakeWorkspace, files: dict[str, str], args: list[str], message: str
) -> None:
    for name, text in files.items():
        (terminal.projects / name).write_text(text)
    result = terminal.run(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not workspace.requests


def test_apps_shell_credentials_come_from_the_profile_setup_wrote(
    terminal: Terminal, workspace: FakeWorkspace, stack: Stack
) -> None:
    """On Apps a shell has no token: DATABRICKS_HOST, the DEFAULT profile, and ~/.databrickscfg."""
    write_databrickscfg(stack.home / ".databrickscfg", workspace.url, OWNER_TOKEN)
    (terminal.projects / "job.py").write_text("print('as the owner')\n")
    env = {k: v for k, v in terminal.env.items() if k != "DATABRICKS_TOKEN"}
    result = terminal.run("job.py", env=env | {"DATABRICKS_CONFIG_PROFILE": "DEFAULT"})
    assert result.returncode == 0, result.stderr
    assert "as the owner" in result.stdout
    (run,) = workspace.jobs.runs.values()
    assert run["user"] == OWNER_EMAIL


def test_no_credentials_is_a_clear_error(terminal: Terminal, workspace: FakeWorkspace) -> None:
    (terminal.projects / "job.py").write_text("print(1)\n")
    env = {k: v for k, v in terminal.env.items() if not k.startswith("DATABRICKS_")}
    result = terminal.run("job.py", env=env)
    assert result.returncode == 2, result.stderr
    assert "no Databricks credentials" in result.stderr and "DATABRICKS_HOST" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_token_is_a_clear_error(terminal: Terminal, workspace: FakeWorkspace) -> None:
    (terminal.projects / "job.py").write_text("print(1)\n")
    result = terminal.run("job.py", env=terminal.env | {"DATABRICKS_TOKEN": "dapi-not-known"})
    assert result.returncode == 1, result.stderr
    assert "Invalid access token" in result.stderr
    assert "Traceback" not in result.stderr
    assert not workspace.jobs.runs


def test_ctrl_c_cancels_the_run(terminal: Terminal, workspace: FakeWorkspace, tmp_path: Path) -> None:
    workspace.jobs.hold = True
    (terminal.projects / "long.py").write_text("print('never finishes here')\n")
    with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
        proc = subprocess.Popen(
            [str(terminal.command), "long.py"],
            cwd=terminal.projects,
            env=terminal.env,
            stdout=out,
            stderr=err,
        )
        try:
            wait_until(
                lambda: b"RUNNING" in (tmp_path / "err").read_bytes(), timeout=30, what="the run is running"
            )
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 130
        finally:
            proc.kill()
            proc.wait()
    stderr = (tmp_path / "err").read_text()
    (run,) = workspace.jobs.runs.values()
    assert run.get("cancelled"), stderr
    assert "cancelling run" in stderr and "cancelled" in stderr
    assert "Traceback" not in stderr


def test_in_a_tmux_shell_of_the_app(stack: Stack, workspace: FakeWorkspace) -> None:
    """As a user types it: the shell tmuxd starts finds `dbx-run` on its PATH with the terminal's
    credentials; a run ends with its status, and Ctrl-C in the pane cancels a held run."""
    env = stack.env | {
        "DATABRICKS_HOST": workspace.url,
        "DATABRICKS_TOKEN": OWNER_TOKEN,
        "DBX_RUN_POLL_SECONDS": "0.05",
    }
    settings = stack.settings
    tmux = [settings.tmux_bin, "-S", str(settings.tmux_socket)]
    tmuxd = start_tmuxd(env)
    try:
        wait_until(lambda: subprocess.run([*tmux, "list-sessions"], capture_output=True).returncode != 1)
        (settings.projects_dir / "job.py").write_text("import sys\nprint('cubed', int(sys.argv[1]) ** 3)\n")
        (settings.projects_dir / "hold.py").write_text("print('held')\n")
        # Created the way the gateway creates sessions: the pane inherits the shells' PATH.
        sessions = TmuxSessions.for_socket(
            settings.tmux_socket, settings.tmux_bin, settings.projects_dir, shell_path(settings, env)
        )
        sessions.create("s", cols=200, rows=40)
        subprocess.run(
            [*tmux, "send-keys", "-t", "=s:", "dbx-run job.py 5; echo exit=$?", "Enter"], check=True
        )
        wait_until(lambda: "exit=0" in capture(tmux, "=s:"), timeout=60, what="dbx-run to finish")
        assert "cubed 125" in capture(tmux, "=s:")
        workspace.jobs.hold = True
        subprocess.run([*tmux, "send-keys", "-t", "=s:", "clear; dbx-run hold.py; echo exit=$?", "Enter"])

        def held_run_running() -> bool:
            # This run's RUNNING, not the first one's still on a screen `clear` has not reached yet: a
            # Ctrl-C then would cut the command line short instead of reaching dbx-run.
            screen = capture(tmux, "=s:")
            runs = list(workspace.jobs.runs.values())
            started = len(runs) == 2 and runs[1]["life_cycle_state"] == "RUNNING"
            return started and "cubed 125" not in screen and "dbx-run: RUNNING" in screen

        wait_until(held_run_running, timeout=60, what="the held run to start")
        subprocess.run([*tmux, "send-keys", "-t", "=s:", "C-c"], check=True)
        try:
            wait_until(lambda: "exit=130" in capture(tmux, "=s:"), timeout=60, what="dbx-run to cancel")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen: {capture(tmux, '=s:')!r}") from None
        assert "cancelled" in capture(tmux, "=s:")
        assert [run.get("cancelled", False) for run in workspace.jobs.runs.values()] == [False, True]
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        tmuxd.wait(timeout=10)


def test_a_workspace_outage_mid_run_is_reported_once_and_outlived(
    terminal: Terminal, workspace: FakeWorkspace, tmp_path: Path
) -> None:
    workspace.jobs.hold = True
    (terminal.projects / "job.py").write_text("print('finished after the outage')\n")
    err = tmp_path / "err"
    with (tmp_path / "out").open("wb") as out, Path(err).open("wb") as errors:
        proc = subprocess.Popen(
            [str(terminal.command), "job.py"],
            cwd=terminal.projects,
            env=terminal.env,
            stdout=out,
            stderr=errors,
        )
        try:
            wait_until(lambda: b"RUNNING" in err.read_bytes(), timeout=30, what="the run is running")
            workspace.mode = "fail"
            wait_until(lambda: b"still trying" in err.read_bytes(), timeout=30, what="the outage reported")
            failing = len(workspace.calls(r"/jobs/runs/get$"))
            wait_until(lambda: len(workspace.calls(r"/jobs/runs/get$")) > failing + 3, what="polls go on")
            workspace.mode, workspace.jobs.hold = "ok", False
            assert proc.wait(timeout=60) == 0
        finally:
            proc.kill()
            proc.wait()
    assert "finished after the outage" in (tmp_path / "out").read_text()
    assert err.read_text().count("still trying") == 1
