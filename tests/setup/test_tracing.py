"""MLflow tracing of Claude Code: the configurer writes mlflow's own hook, and that hook, run for
real, logs a trace into the owner's experiment of the fake workspace (tests/fake_mlflow.py)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.config import ConfigError, Settings, TracingSettings
from services.setup import configurers
from services.setup.configurers import CONFIGURERS
from services.setup.mlflow_stop_hook import MLFLOW_HOOK
from services.setup.registry import load
from services.setup.steps import StepContext, StepLog
from services.setup.tracing import HOOK_IDENTIFIERS, hook_command, ignore_tracing_logs
from services.statefiles import read_tracing_status, save_tracing_choice
from tests.fake_mlflow import uploaded_spans
from tests.fake_workspace import FakeWorkspace
from tests.helpers import env_for_subprocess, wait_until

OWNER = "owner@example.com"
PAT = "dapi-owner-tracing-0123456789"


@pytest.fixture
def workspace() -> Iterator[FakeWorkspace]:
    ws = FakeWorkspace().start()
    ws.add_user(PAT, OWNER, "Owner")
    ws.dirs.add(f"/Users/{OWNER}")
    yield ws
    ws.stop()


def make_settings(tmp_path: Path, ws: FakeWorkspace, **env: str) -> Settings:
    return Settings.from_env(
        {
            "HOME": str(tmp_path / "home"),
            "CODING_AGENTS_STATE_DIR": str(tmp_path / "state"),
            "DATABRICKS_APP_PORT": "8100",
            "DATABRICKS_HOST": ws.url,
            "DATABRICKS_TOKEN": PAT,
            **env,
        }
    )


def configure_claude(settings: Settings) -> dict[str, Any]:
    agent = load().agent("claude")
    assert agent is not None
    log = StepLog(settings.log_dir / "claude.log")
    try:
        CONFIGURERS["claude"](StepContext(settings, {"CODING_AGENTS_MCP_CHECK": "off"}, log), agent)
    finally:
        log.close()
    data: dict[str, Any] = json.loads((settings.home / ".claude" / "settings.json").read_text())
    return data


def stop_hooks(data: dict[str, Any]) -> list[str]:
    hooks = data.get("hooks") or {}
    assert isinstance(hooks, dict)
    return [h["command"] for group in hooks.get("Stop", []) for h in group["hooks"]]


def test_off_by_default(tmp_path: Path, workspace: FakeWorkspace) -> None:
    settings = make_settings(tmp_path, workspace)
    data = configure_claude(settings)
    assert stop_hooks(data) == []
    assert not any(k.startswith("MLFLOW_") for k in data["env"])
    assert workspace.calls("/mlflow/") == []  # nothing asked of the workspace
    assert read_tracing_status(settings.files.tracing_status("claude")).wanted is False


def write_transcript(path: Path, prompt: str, answer: str) -> None:
    entries = [
        {"type": "user", "message": {"role": "user", "content": prompt}, "timestamp": "2026-12-06T10:00:00Z"},
        {
            "type": "assistant",
            "message": {"role": "assistant", "model": "m", "content": [{"type": "text", "text": answer}]},
            "timestamp": "2026-12-06T10:00:02Z",
        },
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def run_hook(command: str, claude_env: dict[str, str], transcript: Path, cwd: Path, ws: FakeWorkspace) -> str:
    """The hook as Claude Code runs it: its settings' env over the terminal's (owner's) credentials."""
    env = env_for_subprocess() | claude_env | {"DATABRICKS_HOST": ws.url, "DATABRICKS_TOKEN": PAT}
    hook_input = json.dumps({"session_id": "s-1", "transcript_path": str(transcript)})
    result = subprocess.run(  # through a shell, as Claude Code runs a command hook
        ["/bin/sh", "-c", command],
        input=hook_input,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    return result.stdout


def test_switched_on_the_real_hook_logs_a_trace_to_the_owners_experiment(
    tmp_path: Path, workspace: FakeWorkspace
) -> None:
    settings = make_settings(tmp_path, workspace, CODING_AGENTS_MLFLOW_TRACING="claude")
    path = settings.home / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    mine = {"hooks": [{"type": "command", "command": "echo mine"}]}
    path.write_text(json.dumps({"hooks": {"Stop": [mine]}, "env": {"MY_VAR": "1"}}))
    data = configure_claude(settings)

    experiment = workspace.mlflow.by_name(f"/Users/{OWNER}/coding-agents")
    assert experiment is not None
    assert stop_hooks(data) == ["echo mine", hook_command()]
    env = data["env"]
    assert isinstance(env, dict)
    assert env["MY_VAR"] == "1" and env["MLFLOW_CLAUDE_TRACING_ENABLED"] == "true"
    assert env["MLFLOW_TRACKING_URI"] == "databricks"
    assert env["MLFLOW_EXPERIMENT_ID"] == experiment["experiment_id"]
    status = read_tracing_status(settings.files.tracing_status("claude"))
    assert status.on and status.written and status.experiment_id == experiment["experiment_id"]
    assert (settings.home / ".config" / "git" / "ignore").read_text() == ".claude/mlflow/\n"

    project = settings.home / "projects" / "demo"
    (project / "mlflow").mkdir(parents=True)  # a project's folder must not shadow the package (-P)
    (project / "mlflow" / "__init__.py").write_text("raise SystemExit('shadowed')\n")
    transcript = tmp_path / "session.jsonl"
    write_transcript(transcript, "Count the quokkas", "There are three quokkas.")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    hook_env = {k: str(v) for k, v in env.items()} | {"TMPDIR": str(scratch)}
    answer = run_hook(hook_command(), hook_env, transcript, project, workspace)
    assert json.loads(answer.strip().splitlines()[-1]) == {"continue": True}
    # Claude Code is answered before the turn is logged; the next turn, already in the transcript by
    # the time mlflow reads it, must not be what is logged for this one.
    write_transcript(transcript, "Now count the wombats", "Two wombats.")

    def logged() -> list[dict[str, Any]]:  # the trace's start, then its spans' upload
        traces = workspace.mlflow.traces_in(experiment["experiment_id"])
        return uploaded_spans(workspace, traces[0]["trace_id"]) if traces else []

    spans = wait_until(logged, timeout=60, what="the trace and its spans logged")
    [trace] = workspace.mlflow.traces_in(experiment["experiment_id"])
    assert trace["trace_metadata"]["mlflow.trace.session"] == "s-1"
    assert any("Count the quokkas" in json.dumps(s) for s in spans), spans
    assert any("There are three quokkas." in json.dumps(s) for s in spans)
    assert "wombats" not in json.dumps(spans)
    wait_until(lambda: not any(scratch.iterdir()), timeout=30, what="the transcript's copy removed")
    assert '{"continue": true}' in (project / ".claude" / "mlflow" / "stop-hook.log").read_text()
    calls = workspace.calls(r"/mlflow/")
    assert calls and all(c.headers["authorization"] == f"Bearer {PAT}" for c in calls)  # as the owner


def test_switched_off_from_the_page_removes_only_our_hook(tmp_path: Path, workspace: FakeWorkspace) -> None:
    settings = make_settings(tmp_path, workspace, CODING_AGENTS_MLFLOW_TRACING="all")
    path = settings.home / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo mine"}]}]}})
    )
    assert len(stop_hooks(configure_claude(settings))) == 2
    save_tracing_choice(settings.files.agent_tracing, "claude", False)  # the page's switch beats the env
    data = configure_claude(settings)
    assert stop_hooks(data) == ["echo mine"]
    assert not any(k.startswith("MLFLOW_") for k in data["env"])
    status = read_tracing_status(settings.files.tracing_status("claude"))
    assert not status.wanted and not status.on and not status.written


def test_a_users_own_mlflow_hook_is_left_alone_when_tracing_is_off(
    tmp_path: Path, workspace: FakeWorkspace
) -> None:
    settings = make_settings(tmp_path, workspace)
    path = settings.home / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    theirs = {"hooks": [{"type": "command", "command": "mlflow autolog claude stop-hook"}]}
    path.write_text(json.dumps({"hooks": {"Stop": [theirs]}, "env": {"MLFLOW_TRACKING_URI": "sqlite:///x"}}))
    data = configure_claude(settings)
    assert stop_hooks(data) == ["mlflow autolog claude stop-hook"]
    assert data["env"]["MLFLOW_TRACKING_URI"] == "sqlite:///x"
    assert HOOK_IDENTIFIERS[0] in hook_command()  # ours is recognised as the tracing hook too


def test_without_the_owners_credentials_tracing_stays_off_and_says_why(
    tmp_path: Path, workspace: FakeWorkspace
) -> None:
    settings = make_settings(tmp_path, workspace, CODING_AGENTS_MLFLOW_TRACING="claude", DATABRICKS_TOKEN="")
    data = configure_claude(settings)
    assert stop_hooks(data) == []
    status = read_tracing_status(settings.files.tracing_status("claude"))
    assert status.wanted and not status.on
    assert "connect your workspace" in status.reason
    log = (settings.log_dir / "claude.log").read_text()
    assert "MLflow tracing off: no token of the owner" in log


def test_an_experiment_the_owner_may_not_create_is_named_in_the_reason(
    tmp_path: Path, workspace: FakeWorkspace
) -> None:
    settings = make_settings(
        tmp_path,
        workspace,
        CODING_AGENTS_MLFLOW_TRACING="claude",
        CODING_AGENTS_MLFLOW_EXPERIMENT="/Users/someone.else@example.com/traces",
    )
    assert stop_hooks(configure_claude(settings)) == []
    reason = read_tracing_status(settings.files.tracing_status("claude")).reason
    assert "PERMISSION_DENIED" in reason and "someone.else@example.com" in reason


def test_an_existing_experiment_is_reused(tmp_path: Path, workspace: FakeWorkspace) -> None:
    settings = make_settings(
        tmp_path,
        workspace,
        CODING_AGENTS_MLFLOW_TRACING="claude",
        CODING_AGENTS_MLFLOW_EXPERIMENT="/Shared/team",
    )
    configure_claude(settings)
    configure_claude(settings)
    assert len(workspace.mlflow.experiments) == 1
    assert len(workspace.calls("/mlflow/experiments/create")) == 1


def test_the_page_reads_on_only_once_the_hook_is_written(
    tmp_path: Path, workspace: FakeWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page and the owner's-token retry read the recorded status: it must follow the write of
    Claude Code's settings, never precede it (a reader in between saw "on" and no hook)."""
    settings = make_settings(tmp_path, workspace, CODING_AGENTS_MLFLOW_TRACING="claude")
    status_path = settings.files.tracing_status("claude")
    seen_at_write: list[bool] = []
    real_write = configurers._write_json

    def observing_write(path: Path, data: dict[str, Any]) -> None:
        if path.name == "settings.json":
            seen_at_write.append(read_tracing_status(status_path).on)
        real_write(path, data)

    monkeypatch.setattr(configurers, "_write_json", observing_write)
    data = configure_claude(settings)
    assert seen_at_write == [False]  # not yet on while the hook was being written
    assert read_tracing_status(status_path).on and stop_hooks(data) == [hook_command()]


@pytest.mark.parametrize(
    ("raw", "agents"),
    [
        ("", frozenset()),
        ("off", frozenset()),
        ("all", frozenset({"*"})),
        (" Claude , codex", {"claude", "codex"}),
    ],
)
def test_tracing_setting(raw: str, agents: frozenset[str]) -> None:
    assert TracingSettings.from_env({"CODING_AGENTS_MLFLOW_TRACING": raw}).agents == agents


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("CODING_AGENTS_MLFLOW_TRACING", "claude;rm -rf", "must be off, all, or agent ids"),
        ("CODING_AGENTS_MLFLOW_EXPERIMENT", "coding-agents", "must be a workspace path"),
    ],
)
def test_bad_tracing_settings_are_refused(name: str, raw: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        TracingSettings.from_env({name: raw})


def test_the_hook_runs_the_apps_python_whatever_the_cwd_holds(tmp_path: Path) -> None:
    # A project folder named `mlflow` must not shadow the package (-P).
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "__init__.py").write_text("raise SystemExit('shadowed')\n")
    argv = [*shlex.split(hook_command())[:2], *MLFLOW_HOOK[:2], "--version"]  # as the hook runs it
    result = subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert result.returncode == 0 and "3.12.0" in result.stdout, result.stderr[-2000:]


def test_the_log_folder_is_added_to_the_users_own_git_ignore_once(tmp_path: Path) -> None:
    ignore = tmp_path / ".config" / "git" / "ignore"
    ignore.parent.mkdir(parents=True)
    ignore.write_text("*.swp")  # the user's, without a final newline
    ignore.chmod(0o600)
    ignore_tracing_logs(tmp_path)
    ignore_tracing_logs(tmp_path)
    assert ignore.read_text() == "*.swp\n.claude/mlflow/\n"
    assert ignore.stat().st_mode & 0o777 == 0o600  # the user's mode kept


def test_a_linked_git_ignore_file_stays_a_link(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles" / "gitignore"
    dotfiles.parent.mkdir()
    dotfiles.write_text("*.swp\n")
    ignore = tmp_path / ".config" / "git" / "ignore"
    ignore.parent.mkdir(parents=True)
    ignore.symlink_to(dotfiles)
    ignore_tracing_logs(tmp_path)
    assert ignore.is_symlink() and dotfiles.read_text() == "*.swp\n.claude/mlflow/\n"
