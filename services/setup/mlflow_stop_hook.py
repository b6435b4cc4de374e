"""Claude Code's Stop hook for MLflow tracing: answers Claude Code at once, logs the turn behind it.

Run as `PYTHON -P .../mlflow_stop_hook.py` (the command services/setup/tracing.py writes). mlflow's own
hook (`python -m mlflow autolog claude stop-hook`) spends 3-4 s importing mlflow and databricks-sdk
before it logs anything, and Claude Code holds the end of every turn for it. Here the transcript is
copied as it is now (the turn that just ended is its last; a later turn must not change what is
logged), and mlflow's hook runs on that copy in a session of its own: Claude Code neither waits for
it nor kills it when it exits (`claude -p`). mlflow's hook logs into `<cwd>/.claude/mlflow/`; its
answer and errors go to `stop-hook.log` there. Stdlib only, no project imports: it runs on every turn.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

LOG_FOLDER = Path(".claude", "mlflow")
LOG_TURN = "--log-turn"
TURN_TIMEOUT_SECONDS = 300  # a workspace that never answers must not leave loggers piling up
MLFLOW_HOOK = ("-m", "mlflow", "autolog", "claude", "stop-hook")


def read_hook_input() -> dict[str, Any]:
    try:
        data = json.load(sys.stdin)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def hand_off(hook_input: dict[str, Any]) -> None:
    """Snapshot the transcript and start the logger in its own session, its output not on our pipes
    (Claude Code reads our stdout to the end: an inherited pipe would hold the turn again)."""
    folder = Path(tempfile.mkdtemp(prefix="mlflow-stop-hook-"))
    try:
        transcript = hook_input.get("transcript_path")
        if isinstance(transcript, str) and Path(transcript).is_file():
            snapshot = folder / Path(transcript).name
            shutil.copyfile(transcript, snapshot)
            hook_input = {**hook_input, "transcript_path": str(snapshot)}
        (folder / "hook-input.json").write_text(json.dumps(hook_input))
        subprocess.Popen(
            [sys.executable, "-P", str(Path(__file__).resolve()), LOG_TURN, str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)  # no logger will remove it
        raise


def log_turn(folder: Path) -> int:
    """mlflow's own hook on the snapshot, synchronously exported (one-shot: its async queue's flush at
    exit only costs time); the snapshot is removed whatever happens."""
    try:
        LOG_FOLDER.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false"}
        log_path = LOG_FOLDER / "stop-hook.log"
        with (folder / "hook-input.json").open("rb") as hook_input, log_path.open("ab") as log:
            done = subprocess.run(
                [sys.executable, "-P", *MLFLOW_HOOK],
                stdin=hook_input,
                stdout=log,
                stderr=log,
                env=env,
                timeout=TURN_TIMEOUT_SECONDS,
                check=False,
            )
        return done.returncode
    except (OSError, subprocess.TimeoutExpired):
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == LOG_TURN:
        return log_turn(Path(argv[1]))
    try:
        hand_off(read_hook_input())
    except OSError as exc:  # a full disk, say: tracing must never stop the agent
        print(f"MLflow tracing: this turn is not logged: {exc}", file=sys.stderr)
    print(json.dumps({"continue": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
