"""MLflow tracing of Claude Code's sessions, through the `mlflow` package's own integration.

When tracing is wanted (services/agent_models.tracing_wanted), Claude Code's settings get what
`mlflow autolog claude -u databricks -e ID` writes (mlflow-skinny 3.12.0, mlflow/claude_code/hooks.py
and config.py): a Stop hook and the MLFLOW_* variables mlflow's hook reads. The hook is
mlflow_stop_hook.py, which answers Claude Code at once and runs mlflow's own `mlflow autolog claude
stop-hook` behind it on a copy of the transcript; that reads the turn and logs it as a trace. It runs
this app's own Python (`-P`: a project's folder named `mlflow` cannot shadow the package) and
authenticates as the terminal does, as the owner (DATABRICKS_HOST and the owner's profile or token
in the shells).

The experiment (CODING_AGENTS_MLFLOW_EXPERIMENT, default /Users/{owner}/coding-agents) is found or
created here, as the owner, so a missing permission or credential shows on the setup step and the
page instead of in a log beside every project. Our hook is removed again only if we wrote it: a
user's own `mlflow autolog claude` set-up is never touched.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from services import state
from services.agent_models import tracing_wanted
from services.config import Settings
from services.setup.registry import Agent
from services.statefiles import TracingStatus, read_tracing_status, save_tracing_status

STOP_HOOK = Path(__file__).resolve().with_name("mlflow_stop_hook.py")
# Our hook (its script's name), and mlflow's own (`mlflow autolog claude` writes it; earlier versions
# of this app wrote it too): all of them are the one tracing hook, never two.
HOOK_IDENTIFIERS = (STOP_HOOK.name, "mlflow autolog claude", "mlflow.claude_code.hooks")
TRACING_ENV = (
    "MLFLOW_CLAUDE_TRACING_ENABLED",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
)
# mlflow's hook logs into <cwd>/.claude/mlflow/: kept out of every project's `git status`.
GIT_IGNORE_LINE = ".claude/mlflow/"
EXPERIMENT_TIMEOUT_SECONDS = 30


class TracingUnavailable(Exception):
    """Why the experiment cannot be used as the owner: one line for the page and the step log."""


def hook_command(python: str = sys.executable) -> str:
    # -P: a project folder named `mlflow` in the cwd must not shadow the package. The script answers
    # Claude Code at once and runs mlflow's own hook behind it (see its docstring).
    return f"{shlex.quote(python)} -P {shlex.quote(str(STOP_HOOK))}"


def experiment_for_owner(settings: Settings) -> tuple[str, str]:
    """(name, id) of the tracing experiment, created if missing, asking as the owner."""
    # databricks-sdk takes a second to import: only a configure run with tracing on pays for it.
    from databricks.sdk.errors import NotFound

    from services.databricks import WorkspaceUnavailable, describe_error, owner_client, scim_email

    try:
        client = owner_client(settings, timeout=EXPERIMENT_TIMEOUT_SECONDS)
        name = settings.tracing.experiment or (f"/Users/{scim_email(client.current_user.me())}/coding-agents")
        try:
            found = client.experiments.get_by_name(name).experiment
            experiment_id = found.experiment_id if found else None
        except NotFound:
            experiment_id = None
        if not experiment_id:
            client.workspace.mkdirs(name.rsplit("/", 1)[0] or "/")
            experiment_id = client.experiments.create_experiment(name).experiment_id
    except WorkspaceUnavailable as exc:
        raise TracingUnavailable(str(exc)) from None
    except Exception as exc:
        raise TracingUnavailable(f"MLflow experiment: {describe_error(exc)}") from None
    if not experiment_id:
        raise TracingUnavailable(f"the workspace gave no id for the experiment {name}")
    return name, str(experiment_id)


def _is_ours(hook: Any) -> bool:
    command = hook.get("command", "") if isinstance(hook, dict) else ""
    return isinstance(command, str) and any(marker in command for marker in HOOK_IDENTIFIERS)


def remove_hook(data: dict[str, Any]) -> None:
    """Take mlflow's Stop hook and variables out of Claude Code's settings; the rest stays."""
    hooks = data.get("hooks")
    groups = hooks.get("Stop") if isinstance(hooks, dict) else None
    if isinstance(hooks, dict) and isinstance(groups, list):
        kept = []
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if isinstance(inner, list):
                group = {**group, "hooks": [h for h in inner if not _is_ours(h)]}
                if not group["hooks"]:
                    continue
            kept.append(group)
        if kept:
            hooks["Stop"] = kept
        else:
            del hooks["Stop"]
        if not hooks:
            del data["hooks"]
    env = data.get("env")
    if isinstance(env, dict):
        for name in TRACING_ENV:
            env.pop(name, None)


def add_hook(data: dict[str, Any], experiment: str, experiment_id: str) -> None:
    """What `mlflow autolog claude -u databricks -e ID` writes, with our hook in front of mlflow's."""
    remove_hook(data)
    hooks = data.setdefault("hooks", {})
    # Not Claude Code's `async` hooks: `claude -p` exits without waiting and its hook dies with it (0 of
    # 4 traces logged, scripts/bench tracing), and a later turn could reach the transcript first.
    hooks.setdefault("Stop", []).append({"hooks": [{"type": "command", "command": hook_command()}]})
    data.setdefault("env", {}).update(
        {
            "MLFLOW_CLAUDE_TRACING_ENABLED": "true",
            "MLFLOW_TRACKING_URI": "databricks",
            "MLFLOW_EXPERIMENT_ID": experiment_id,
            "MLFLOW_EXPERIMENT_NAME": experiment,
        }
    )


def ignore_tracing_logs(home: Path) -> None:
    """git's own global ignore file (read without any config): the hook's log folder in every repo."""
    path = home / ".config" / "git" / "ignore"
    try:
        text, mode = path.read_text(), path.stat().st_mode & 0o777
    except FileNotFoundError:
        text, mode = "", 0o644
    if GIT_IGNORE_LINE in text.splitlines():
        return
    # Atomic: every git command in the shells reads this file; none should see half of it. Into the
    # link's target when it is one (dotfiles kept in a repo), so the link stays.
    added = text + ("" if not text or text.endswith("\n") else "\n") + GIT_IGNORE_LINE + "\n"
    state.atomic_write_bytes(path.resolve(), added.encode(), mode=mode)


def configure_claude_tracing(
    settings: Settings, agent: Agent, data: dict[str, Any]
) -> tuple[str, TracingStatus]:
    """Switch tracing on or off in Claude Code's settings (`data`, written by the caller); one line
    for the step log, and the outcome, which the caller records with `record_tracing` once `data`
    is written: the page (statefiles.tracing_status) must never say on before the hook is there."""
    before = read_tracing_status(settings.files.tracing_status(agent.id))
    status = TracingStatus(wanted=tracing_wanted(settings, agent))
    if status.wanted:
        try:
            status.experiment, status.experiment_id = experiment_for_owner(settings)
        except TracingUnavailable as exc:
            status.reason = str(exc)
    if status.wanted and not status.reason:
        add_hook(data, status.experiment, status.experiment_id)
        ignore_tracing_logs(settings.home)
        status.on = status.written = True
        note = f"MLflow tracing on → {status.experiment} (id {status.experiment_id})"
    else:
        if before.written:  # ours, from an earlier run: a hook that cannot log would fail every turn
            remove_hook(data)
        note = f"MLflow tracing off: {status.reason}" if status.reason else "MLflow tracing off"
    return note, status


def record_tracing(settings: Settings, agent: Agent, status: TracingStatus) -> None:
    save_tracing_status(settings.files.tracing_status(agent.id), status)
