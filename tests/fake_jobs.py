"""The Jobs API runs of the fake workspace (tests/fake_workspace.py serves them): one-time runs
(`runs/submit`), polled with `runs/get`, read with `runs/get-output`, stopped with `runs/cancel`.

Shapes follow databricks-sdk 0.162.0 (service/jobs.py, API 2.2). A run really runs: its Python file
(or the code cells of its notebook), taken from the fake's workspace files, is executed here with the
task's parameters, so a test sees the script's own output and exit status come back. A run is PENDING
at its first GET, RUNNING for `running_polls` GETs (for ever while `hold` is set), then
TERMINATED with SUCCESS or FAILED; a cancelled run ends TERMINATED/CANCELED. Error wording marked
"(wording assumed)" is not documented.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.fake_api import json_body, workspace_path

if TYPE_CHECKING:
    from tests.fake_workspace import FakeWorkspace, Recorded, _Handler

TASK_RUN_OFFSET = 1000  # a task's run id is its run's id plus this
RUN_TIMEOUT = 60.0


@dataclass
class FakeJobs:
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    running_polls: int = 1
    hold: bool = False  # runs stay RUNNING until it is cleared (for cancel tests)
    next_id: int = 501
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submitted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(run["request"]) for run in self.runs.values()]


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error_code": code, "message": message}


def _body(req: Recorded) -> dict[str, Any]:
    return json_body(req.body)


_norm = workspace_path


def _check_task(ws: FakeWorkspace, task: dict[str, Any], environments: dict[str, Any]) -> str | None:
    """Why the real API would refuse this task, or None."""
    python = task.get("spark_python_task")
    notebook = task.get("notebook_task")
    if bool(python) == bool(notebook):
        return "exactly one of spark_python_task or notebook_task is supported by this fake"
    if python:
        if task.get("environment_key") not in environments:
            # Serverless Python tasks need an environment (wording assumed).
            return "A task environment is required for serverless spark_python_task"
        spec = environments[task["environment_key"]].get("spec") or {}
        if not spec.get("environment_version"):
            return "environment_version is required in the environment spec (wording assumed)"
        path = _norm(str(python.get("python_file", "")))
        if path not in ws.files:
            return f"File {python.get('python_file')} does not exist. (wording assumed)"
    if notebook:
        path = _norm(str(notebook.get("notebook_path", "")))
        if path not in ws.files or ws.formats.get(path) not in ("JUPYTER", "SOURCE"):
            return f"Unable to access the notebook {notebook.get('notebook_path')}. (wording assumed)"
    return None


def _submit(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    body = _body(req)
    tasks = body.get("tasks") or []
    if len(tasks) != 1 or not isinstance(tasks[0], dict):
        return _error(400, "INVALID_PARAMETER_VALUE", "this fake runs exactly one task per submit")
    environments = {
        str(e.get("environment_key")): e for e in body.get("environments") or [] if isinstance(e, dict)
    }
    problem = _check_task(ws, tasks[0], environments)
    if problem:
        return _error(400, "INVALID_PARAMETER_VALUE", problem)
    jobs = ws.jobs
    with jobs.lock:
        run_id = jobs.next_id
        jobs.next_id += 1
        jobs.runs[run_id] = {
            "request": body,
            "user": h.user.email if h.user else "",
            "life_cycle_state": "PENDING",
            "result_state": None,
            "polls": 0,
            "output": {},
        }
    return 200, {"run_id": run_id}


def _execute(ws: FakeWorkspace, task: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Run the task's code here; (succeeded, the get-output body)."""
    python = task.get("spark_python_task")
    if python:
        source = ws.files[_norm(python["python_file"])]
        argv = [str(a) for a in python.get("parameters") or []]
    else:
        notebook = task["notebook_task"]
        path = _norm(notebook["notebook_path"])
        if ws.formats.get(path) == "JUPYTER":
            cells = json.loads(ws.files[path]).get("cells", [])
            code = ["".join(c.get("source", [])) for c in cells if c.get("cell_type") == "code"]
            source = "\n".join(code).encode()
        else:  # a SOURCE notebook: Python with `# COMMAND ----------` comments between cells
            source = ws.files[path]
        argv = [f"{k}={v}" for k, v in sorted((notebook.get("base_parameters") or {}).items())]
    with tempfile.TemporaryDirectory(prefix="fake-run-") as tmp:
        script = Path(tmp, "task.py")
        script.write_bytes(source)
        done = subprocess.run(
            [sys.executable, str(script), *argv],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            cwd=tmp,
            check=False,
        )
    logs = done.stdout + done.stderr
    if python:
        output: dict[str, Any] = {"logs": logs, "logs_truncated": False}
    else:
        output = {"notebook_output": {"result": done.stdout.strip() or None, "truncated": False}}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        output["error"] = last
        output["error_trace"] = done.stderr
    return done.returncode == 0, output


def _advance(ws: FakeWorkspace, run_id: int) -> None:
    jobs = ws.jobs
    with jobs.lock:
        run = jobs.runs[run_id]
        run["polls"] += 1
        if run["life_cycle_state"] == "PENDING":
            if run["polls"] > 1:  # the first GET sees it PENDING
                run["life_cycle_state"] = "RUNNING"
            return
        if run["life_cycle_state"] == "TERMINATING":
            run["life_cycle_state"], run["result_state"] = "TERMINATED", "CANCELED"
            return
        if run["life_cycle_state"] != "RUNNING" or jobs.hold or run["polls"] <= jobs.running_polls + 1:
            return
        run["life_cycle_state"] = "EXECUTING"  # by this GET; others see it RUNNING meanwhile
    ok, output = _execute(ws, run["request"]["tasks"][0])
    with jobs.lock:
        run["output"] = output
        run["life_cycle_state"], run["result_state"] = "TERMINATED", "SUCCESS" if ok else "FAILED"


def _state(run: dict[str, Any]) -> dict[str, Any]:
    life = run["life_cycle_state"]
    state: dict[str, Any] = {"life_cycle_state": "RUNNING" if life == "EXECUTING" else life}
    if run["result_state"]:
        state["result_state"] = run["result_state"]
        state["state_message"] = {
            "SUCCESS": "",
            "FAILED": "Workload failed, see run output for details",
            "CANCELED": "Run cancelled.",
        }.get(run["result_state"], "")
    elif life == "PENDING":
        state["state_message"] = "Waiting for serverless compute"
    else:
        state["state_message"] = ""
    return state


def _get(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    try:
        run_id = int(req.query.get("run_id", [""])[0])
    except ValueError:
        return _error(400, "INVALID_PARAMETER_VALUE", "run_id must be a number")
    if run_id not in ws.jobs.runs:
        return _error(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
    _advance(ws, run_id)
    with ws.jobs.lock:
        run = ws.jobs.runs[run_id]
        task = run["request"]["tasks"][0]
        state = _state(run)
        return 200, {
            "run_id": run_id,
            "run_name": run["request"].get("run_name", ""),
            "creator_user_name": run["user"],
            "run_type": "SUBMIT_RUN",
            "run_page_url": f"{ws.url}/?o=1234567890#job/0/run/{run_id}",
            "state": state,
            "tasks": [{"run_id": run_id + TASK_RUN_OFFSET, "task_key": task.get("task_key"), "state": state}],
        }


def _get_output(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    try:
        run_id = int(req.query.get("run_id", [""])[0])
    except ValueError:
        return _error(400, "INVALID_PARAMETER_VALUE", "run_id must be a number")
    if run_id in ws.jobs.runs:
        return _error(
            400,
            "INVALID_PARAMETER_VALUE",
            "Retrieving the output of runs with multiple tasks is not supported. "
            "Please retrieve the output of each individual task run instead.",
        )
    with ws.jobs.lock:
        run = ws.jobs.runs.get(run_id - TASK_RUN_OFFSET)
        if run is None:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        return 200, {**run["output"], "metadata": {"run_id": run_id, "state": _state(run)}}


def _cancel(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    run_id = _body(req).get("run_id")
    with ws.jobs.lock:
        run = ws.jobs.runs.get(run_id) if isinstance(run_id, int) else None
        if run is None:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        if run["life_cycle_state"] in ("PENDING", "RUNNING"):
            run["life_cycle_state"] = "TERMINATING"
            run["cancelled"] = True
    return 200, {}


JOBS_ROUTES = {
    ("POST", "/api/2.2/jobs/runs/submit"): _submit,
    ("GET", "/api/2.2/jobs/runs/get"): _get,
    ("GET", "/api/2.2/jobs/runs/get-output"): _get_output,
    ("POST", "/api/2.2/jobs/runs/cancel"): _cancel,
}
