"""`dbx-run FILE [ARGS...]`: run a Python file or notebook from ~/projects as a one-time serverless
job on Databricks, as the owner, and follow it in the terminal.

The way out when the app's one container is too small: the file is uploaded to
/Workspace/Users/{me}/.coding-agents/dbx-run/<its path under ~/projects>, submitted with
`jobs.submit` (serverless: no cluster named), and polled; state changes and the run's output are
printed as they come, the run URL at once. Exit status: 0 success, 1 failure, 2 bad input,
130 after Ctrl-C has cancelled the run. Credentials are the terminal's own (DATABRICKS_HOST with
DATABRICKS_TOKEN, or the ~/.databrickscfg profile setup wrote), so the run is the owner's.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import Run

PROG = "dbx-run"
POLL_ENV = "DBX_RUN_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 5.0
ENVIRONMENT_ENV = "DBX_RUN_ENVIRONMENT_VERSION"
# Serverless environment version 5 (Python 3.12, Databricks Connect 18), released 2026-02-25 and
# supported until 2029-02-25: Databricks release notes, "Serverless environment versions".
DEFAULT_ENVIRONMENT_VERSION = "5"
UPLOAD_FOLDER = ".coding-agents/dbx-run"  # under /Workspace/Users/{me}
MAX_UPLOAD = 10 * 1024 * 1024  # the workspace import API's limit per file
NOTEBOOK_HEADER = b"# Databricks notebook source"
TERMINAL_STATES = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class BadInput(Exception):
    """The command line cannot be run; the message says why."""


@dataclass(frozen=True)
class Job:
    """What to upload and how to run it."""

    local: Path
    relative: str  # path under ~/projects, posix
    kind: str  # "python" (spark_python_task) or "notebook" (notebook_task)
    import_format: str  # ImportFormat name for the upload
    args: tuple[str, ...]
    pip: tuple[str, ...]

    def remote_path(self, user: str) -> str:
        path = f"/Workspace/Users/{user}/{UPLOAD_FOLDER}/{self.relative}"
        # Notebooks are stored without their extension (the workspace strips it on import).
        return path.rsplit(".", 1)[0] if self.kind == "notebook" else path


def parse_job(file: str, args: list[str], pip: list[str], projects: Path) -> Job:
    """Check the command line against the rules of the workspace and of serverless jobs."""
    local = Path(os.path.realpath(file))
    root = Path(os.path.realpath(projects))
    if not local.exists():
        raise BadInput(f"{file}: no such file")
    if not local.is_relative_to(root):
        raise BadInput(f"{file}: not under {projects} (only project files are run; move it there)")
    if not local.is_file():
        raise BadInput(f"{file}: not a regular file")
    suffix = local.suffix.lower()
    if suffix not in (".py", ".ipynb"):
        raise BadInput(f"{file}: not a Python file (.py) or a notebook (.ipynb)")
    if not os.access(local, os.R_OK):
        raise BadInput(f"{file}: not readable")
    size = local.stat().st_size
    if size > MAX_UPLOAD:
        raise BadInput(f"{file}: {size} bytes, over the workspace's 10 MB limit per file")
    with Path(local).open("rb") as f:
        head = f.read(len(NOTEBOOK_HEADER))
    if suffix == ".ipynb":
        kind, fmt = "notebook", "JUPYTER"
    elif head == NOTEBOOK_HEADER:  # a notebook exported as source: it runs as a notebook
        kind, fmt = "notebook", "SOURCE"
    else:
        kind, fmt = "python", "AUTO"
    if kind == "notebook":
        bad = [a for a in args if "=" not in a or a.startswith("=")]
        if bad:
            raise BadInput(f"notebook arguments are KEY=VALUE widget values; not: {' '.join(bad)}")
        if pip:
            raise BadInput("--pip is for Python files; a notebook installs its own with %pip install")
    return Job(local, local.relative_to(root).as_posix(), kind, fmt, tuple(args), tuple(pip))


def make_client() -> WorkspaceClient:
    """The terminal's own credentials, as the Databricks CLI in it uses them."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    import services.databricks  # noqa: F401  # its filter silences the SDK's host-metadata warning

    try:
        # Bounded retries: a workspace that does not answer is reported within a minute.
        return WorkspaceClient(config=Config(retry_timeout_seconds=60, http_timeout_seconds=60))
    except ValueError as exc:
        raise BadInput(
            f"no Databricks credentials ({str(exc).splitlines()[0][:200]}). In the app's terminal they "
            "come from setup (~/.databrickscfg); elsewhere set DATABRICKS_HOST and DATABRICKS_TOKEN"
        ) from None


def upload(client: WorkspaceClient, job: Job, remote: str) -> None:
    from databricks.sdk.service.workspace import ImportFormat, Language

    client.workspace.mkdirs(remote.rsplit("/", 1)[0])
    client.workspace.upload(
        remote,
        job.local.read_bytes(),
        format=ImportFormat[job.import_format],
        language=Language.PYTHON if job.import_format == "SOURCE" else None,
        overwrite=True,
    )


def submit(client: WorkspaceClient, job: Job, remote: str, environment_version: str) -> int:
    from databricks.sdk.service.compute import Environment
    from databricks.sdk.service.jobs import JobEnvironment, NotebookTask, Source, SparkPythonTask, SubmitTask

    if job.kind == "python":
        task = SubmitTask(
            task_key="main",
            spark_python_task=SparkPythonTask(
                python_file=remote, parameters=list(job.args), source=Source.WORKSPACE
            ),
            environment_key="default",
        )
        spec = Environment(environment_version=environment_version, dependencies=list(job.pip) or None)
        environments = [JobEnvironment(environment_key="default", spec=spec)]
    else:
        params = dict(a.split("=", 1) for a in job.args)
        task = SubmitTask(
            task_key="main",
            notebook_task=NotebookTask(notebook_path=remote, base_parameters=params, source=Source.WORKSPACE),
        )
        environments = []
    waiter = client.jobs.submit(
        run_name=f"{PROG} {job.relative}",
        tasks=[task],
        environments=environments or None,
        idempotency_token=uuid.uuid4().hex,  # a retried submit never starts a second run
    )
    return int(waiter.run_id)


class Follower:
    """Polls one run and prints what changed: its state, then its output."""

    def __init__(self, client: WorkspaceClient, run_id: int, out: Callable[[str], None]) -> None:
        self.client = client
        self.run_id = run_id
        self.out = out
        self.url = ""
        self.last_state: tuple[str, str, str] | None = None
        self.printed_logs = ""
        self.unreachable = False

    def poll(self) -> Run | None:
        """One look at the run; None when the workspace did not answer (reported once a streak)."""
        from services.databricks import describe_error

        try:
            run = self.client.jobs.get_run(self.run_id)
        except Exception as exc:  # network or workspace trouble: keep following, say so once
            if not self.unreachable:
                self.out(f"{PROG}: cannot read run {self.run_id}: {describe_error(exc)}; still trying")
            self.unreachable = True
            return None
        self.unreachable = False
        if not self.url and run.run_page_url:
            self.url = run.run_page_url
            self.out(f"{PROG}: run {self.run_id}: {self.url}")
        state = run.state
        current = (
            state.life_cycle_state.value if state and state.life_cycle_state else "UNKNOWN",
            state.result_state.value if state and state.result_state else "",
            (state.state_message or "").strip() if state else "",
        )
        if current != self.last_state:
            self.last_state = current
            life, result, message = current
            self.out(f"{PROG}: {result or life}" + (f": {message}" if message else ""))
        return run

    def task_run_id(self, run: Run) -> int:
        # get-output wants the task's run, not the submit run holding it.
        tasks = run.tasks or []
        return int(tasks[0].run_id) if tasks and tasks[0].run_id else self.run_id

    def print_output(self, run: Run, final: bool) -> None:
        """New log text (while running, when the workspace offers it), and at the end the result."""
        try:
            output = self.client.jobs.get_run_output(self.task_run_id(run))
        except Exception as exc:
            if final:
                from services.databricks import describe_error

                self.out(f"{PROG}: cannot read the run's output: {describe_error(exc)}")
            return
        logs = output.logs or ""
        if logs.startswith(self.printed_logs) and len(logs) > len(self.printed_logs):
            sys.stdout.write(logs[len(self.printed_logs) :])
            sys.stdout.flush()
            self.printed_logs = logs
        if not final:
            return
        if logs and not logs.endswith("\n"):
            sys.stdout.write("\n")
        if output.logs_truncated:
            self.out(f"{PROG}: the output was truncated by Databricks; all of it: {self.url}")
        if output.notebook_output and output.notebook_output.result:
            self.out(f"{PROG}: notebook result: {output.notebook_output.result}")
        if output.error:
            self.out(f"{PROG}: error: {output.error}")
        if output.error_trace and output.error_trace.strip() not in logs:
            sys.stderr.write(output.error_trace.rstrip() + "\n")

    def follow(self, interval: float) -> int:
        while True:
            run = self.poll()
            if run is not None and run.state and run.state.life_cycle_state:
                life = run.state.life_cycle_state.value
                if life in TERMINAL_STATES:
                    self.print_output(run, final=True)
                    result = run.state.result_state.value if run.state.result_state else life
                    self.out(f"{PROG}: run {self.run_id} {'succeeded' if result == 'SUCCESS' else result}")
                    return EXIT_OK if result == "SUCCESS" else EXIT_FAILED
                if life == "RUNNING":
                    self.print_output(run, final=False)
            time.sleep(interval)

    def cancel(self) -> int:
        from services.databricks import describe_error

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cancel short
        self.out(f"{PROG}: Ctrl-C: cancelling run {self.run_id}")
        try:
            self.client.jobs.cancel_run(self.run_id)
        except Exception as exc:
            reason = describe_error(exc)
            self.out(f"{PROG}: could not cancel run {self.run_id}: {reason}; cancel it at {self.url}")
            return EXIT_FAILED
        self.out(f"{PROG}: run {self.run_id} cancelled")
        return EXIT_INTERRUPTED


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise BadInput(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise BadInput(f"{name} must be more than 0 seconds")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run a Python file or notebook from ~/projects as a one-time serverless job on "
        "Databricks (as you), printing its state, output and URL. Ctrl-C cancels the run.",
        epilog=f"Environment: {ENVIRONMENT_ENV} (serverless environment version, default "
        f"{DEFAULT_ENVIRONMENT_VERSION}), {POLL_ENV} (default {DEFAULT_POLL_SECONDS:g}).",
    )
    p.add_argument(
        "--pip", action="append", default=[], metavar="REQUIREMENT", help="pip dependency (repeatable)"
    )
    p.add_argument("file", metavar="FILE", help="a .py file or an .ipynb notebook under ~/projects")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments (KEY=VALUE for a notebook)")
    return p


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    environment_version = os.environ.get(ENVIRONMENT_ENV, "").strip() or DEFAULT_ENVIRONMENT_VERSION
    try:
        interval = _float_env(POLL_ENV, DEFAULT_POLL_SECONDS)
        job = parse_job(options.file, options.args, options.pip, Path.home() / "projects")
        client = make_client()
    except BadInput as exc:
        _say(f"{PROG}: {exc}")
        return EXIT_USAGE
    return run(client, job, environment_version, interval)


def run(client: WorkspaceClient, job: Job, environment_version: str, interval: float) -> int:
    from services.databricks import describe_error

    submitting = False
    try:
        user = client.current_user.me().user_name
        remote = job.remote_path(str(user))
        _say(f"{PROG}: uploading {job.relative} to {remote}")
        upload(client, job, remote)
        submitting = True
        run_id = submit(client, job, remote, environment_version)
    except KeyboardInterrupt:
        if submitting:  # the request may have reached the workspace before the answer was cut off
            _say(f"{PROG}: interrupted while submitting; if the run started, it is under Job Runs")
        else:
            _say(f"{PROG}: interrupted before the run was submitted; nothing runs")
        return EXIT_INTERRUPTED
    except Exception as exc:
        _say(f"{PROG}: {describe_error(exc)}")
        return EXIT_FAILED
    follower = Follower(client, run_id, _say)
    try:
        return follower.follow(interval)
    except KeyboardInterrupt:
        return follower.cancel()


def _entry() -> Any:
    try:
        return main()
    except KeyboardInterrupt:  # during argument checks: nothing was submitted
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(_entry())
