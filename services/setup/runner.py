"""Run setup steps in parallel (bounded), each after the steps it names in `after`, with a timeout
per step, writing the status file on every change and a progress line per step to stdout (the
supervisor log).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from services.config import Settings
from services.platform_log import announce
from services.setup.status import (
    SetupState,
    SetupStatus,
    StepState,
    StepStatus,
    read_status,
    write_status,
)
from services.setup.steps import Step, StepContext, StepFailed, StepLog, StepSkipped

log = logging.getLogger("setup")

DEFAULT_CONCURRENCY = 4
# Log lines arrive by the hundred during npm installs; the status file is rewritten at most this often.
FLUSH_INTERVAL = 0.5


class Runner:
    def __init__(
        self,
        steps: list[Step],
        settings: Settings,
        status_path: Path,
        log_dir: Path,
        env: Mapping[str, str],
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.steps = {s.id: s for s in steps}
        self.settings = settings
        self.status_path = status_path
        self.log_dir = log_dir
        self.env = env
        self.semaphore = asyncio.Semaphore(concurrency)
        self.status = SetupStatus()
        self._dirty = asyncio.Event()
        self._finished: dict[str, asyncio.Event] = {}
        self._logs: dict[str, StepLog] = {}  # of running steps, for their live log tail

    def _initial_status(self, selected: set[str]) -> SetupStatus:
        try:
            previous = {s.id: s for s in read_status(self.status_path).steps}
        except (OSError, ValueError):
            previous = {}
        steps = []
        for step in self.steps.values():
            if step.id not in selected and step.id in previous and previous[step.id].state.finished:
                steps.append(previous[step.id])  # not part of this run: keep what the last run found
                continue
            steps.append(
                StepStatus(
                    step.id,
                    step.title,
                    step.kind,
                    after=list(step.after),
                    version=step.version,
                    agent=step.agent,
                )
            )
        return SetupStatus(SetupState.RUNNING, time.time(), None, os.getpid(), steps)

    def _write(self) -> None:
        for entry in self.status.steps:
            if entry.state == StepState.RUNNING and entry.id in self._logs:
                entry.log_tail = list(self._logs[entry.id].tail)
        write_status(self.status_path, self.status)

    def _changed(self) -> None:
        self._dirty.set()

    async def _flusher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self._write()
            await asyncio.sleep(FLUSH_INTERVAL)

    async def run(self, only: set[str] | None = None) -> SetupStatus:
        selected = set(self.steps) if only is None else only & set(self.steps)
        self.status = self._initial_status(selected)
        self._finished = {step_id: asyncio.Event() for step_id in self.steps}
        for entry in self.status.steps:
            if entry.id not in selected:
                self._finished[entry.id].set()
        self._write()
        flusher = asyncio.create_task(self._flusher())
        try:
            await asyncio.gather(*(self._run_step(self.steps[i]) for i in self.steps if i in selected))
        except asyncio.CancelledError:
            # Stopped (SIGTERM from supervisord): the steps' process groups are already killed.
            self.status.state, self.status.finished = SetupState.FAILED, time.time()
            self._write()
            log.info("setup stopped before it finished")
            raise
        finally:
            flusher.cancel()
        failed = [s for s in self.status.steps if s.state == StepState.FAILED]
        self.status.state = SetupState.FAILED if failed else SetupState.DONE
        self.status.finished = time.time()
        self._write()
        counts = {state: sum(1 for s in self.status.steps if s.state == state) for state in StepState}
        log.info(
            "setup %s in %.1f s (%d ok, %d skipped, %d failed)",
            "done" if not failed else "FAILED",
            self.status.finished - (self.status.started or self.status.finished),
            counts[StepState.OK],
            counts[StepState.SKIPPED],
            counts[StepState.FAILED],
        )
        return self.status

    async def _run_step(self, step: Step) -> None:
        entry = self.status.step(step.id)
        try:
            await asyncio.gather(*(self._finished[dep].wait() for dep in step.after))
            blocked = [d for d in step.after if not self.status.step(d).state.good]
            if blocked:
                self._finish(entry, StepState.FAILED, f"not run: needs {', '.join(blocked)}, which failed")
                return
            async with self.semaphore:
                await self._execute(step, entry)
        finally:
            self._finished[step.id].set()

    async def _execute(self, step: Step, entry: StepStatus) -> None:
        step_log = StepLog(self.log_dir / f"{step.id}.log", on_line=self._changed)
        self._logs[step.id] = step_log
        entry.state, entry.started, entry.ended = StepState.RUNNING, time.time(), None
        entry.reason, entry.exit_code, entry.log_tail = "", None, []
        self._write()
        log.info("[%s] started", step.id)
        ctx = StepContext(self.settings, self.env, step_log)
        try:
            async with asyncio.timeout(step.timeout):
                skip_reason = await step.current(ctx)
                if skip_reason is None:
                    await step.run(ctx)
        except TimeoutError:
            self._finish(entry, StepState.FAILED, f"timed out after {step.timeout:g} s", step_log)
        except asyncio.CancelledError:
            self._finish(entry, StepState.FAILED, "interrupted: setup was stopped; retry to finish", step_log)
            raise
        except StepSkipped as exc:
            self._finish(entry, StepState.SKIPPED, exc.reason, step_log)
        except StepFailed as exc:
            entry.exit_code = exc.exit_code
            self._finish(entry, StepState.FAILED, exc.reason, step_log)
        except Exception as exc:  # a bug in one step must not take the others down
            log.exception("[%s] crashed", step.id)
            self._finish(entry, StepState.FAILED, f"internal error: {type(exc).__name__}: {exc}", step_log)
        else:
            if skip_reason is not None:
                self._finish(entry, StepState.SKIPPED, skip_reason, step_log)
            else:
                entry.exit_code = 0 if entry.exit_code is None else entry.exit_code
                self._finish(entry, StepState.OK, "", step_log)
        finally:
            self._logs.pop(step.id, None)
            step_log.close()

    def _finish(
        self, entry: StepStatus, state: StepState, reason: str, step_log: StepLog | None = None
    ) -> None:
        entry.state, entry.reason = state, reason
        entry.ended = time.time()
        if step_log is not None:
            if reason:
                step_log.line(f"{state.value}: {reason}")
            entry.log_tail = list(step_log.tail)
        seconds = entry.seconds or 0.0
        if state == StepState.FAILED:
            announce(
                f"setup step {entry.id} failed: {reason}",
                f"details in {self.log_dir / (entry.id + '.log')}; fix the cause, then retry it from the "
                "page's setup panel (or scripts/ctl start setup)",
            )
        log.info(
            "[%s] %s in %.2f s%s", entry.id, state.value.upper(), seconds, f": {reason}" if reason else ""
        )
        self._write()
