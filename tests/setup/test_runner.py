"""The runner with fake steps that are real subprocesses: parallel, ordered, bounded, durable."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from services.setup.status import status_path
from tests.helpers import wait_until
from tests.setup.conftest import SetupEnv, command_step, tools


def test_steps_run_in_parallel_and_total_is_about_the_slowest(setup_env: SetupEnv) -> None:
    setup_env.registry(tools(*(command_step(name, "sleep 1") for name in ("a", "b", "c"))))
    started = time.monotonic()
    result = setup_env.run()
    total = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    steps = setup_env.status().steps
    assert {s.state.value for s in steps} == {"ok"}
    # All three were running at once: each started before any of them ended.
    assert max(s.started or 0 for s in steps) < min(s.ended or 0 for s in steps)
    assert total < sum(s.seconds or 0 for s in steps), (total, [s.seconds for s in steps])


def test_dependencies_wait_and_a_failure_blocks_only_its_dependents(setup_env: SetupEnv) -> None:
    setup_env.registry(
        tools(
            command_step("a", "sleep 0.3"),
            command_step("b", "echo about to fail; echo 'disk on fire' >&2; exit 3"),
            command_step("c", "true", after=("a",)),
            command_step("d", "true", after=("b",)),
            command_step("e", "sleep 0.2"),
        )
    )
    result = setup_env.run()
    assert result.returncode == 1
    status = setup_env.status()
    assert setup_env.states() == {"a": "ok", "b": "failed", "c": "ok", "d": "failed", "e": "ok"}
    assert status.state.value == "failed"
    a, b, c, d = (status.step(i) for i in "abcd")
    assert (c.started or 0) >= (a.ended or 0)
    assert b.exit_code == 3 and b.reason == "exited with status 3: about to fail | disk on fire"
    assert b.log_tail[-1].startswith("failed:")
    assert d.reason == "not run: needs b, which failed" and d.started is None
    assert "[b] FAILED" in result.stdout and "[a] OK" in result.stdout  # progress lines in the log
    assert "\ndisk on fire\n" in (setup_env.settings.log_dir / "setup" / "b.log").read_text()
    # The platform log (stderr, which supervisord puts on its stdout) has one line per failed step.
    platform = [line for line in result.stderr.splitlines() if line.startswith("[coding-agents] ")]
    assert len(platform) == 2, result.stderr
    assert platform[0].startswith(
        "[coding-agents] setup step b failed: exited with status 3: about to fail | disk on fire; details in "
    )
    assert platform[0].endswith("retry it from the page's setup panel (or scripts/ctl start setup)")
    assert platform[1].startswith("[coding-agents] setup step d failed: not run: needs b, which failed")


def test_a_step_over_its_timeout_fails_and_its_processes_die(setup_env: SetupEnv) -> None:
    pidfile = setup_env.root / "pid"
    setup_env.registry(
        tools(
            command_step("slow", f"sh -c 'echo $$ > {pidfile}; exec sleep 60' & wait", timeout=0.5),
            command_step("quick", "true"),
        )
    )
    result = setup_env.run()
    assert result.returncode == 1
    slow = setup_env.status().step("slow")
    assert slow.state.value == "failed" and slow.reason == "timed out after 0.5 s"
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not Path(f"/proc/{grandchild}").exists(), timeout=5, what="the step's child killed")
    assert setup_env.states()["quick"] == "ok"


def test_rerun_skips_what_is_in_place(setup_env: SetupEnv) -> None:
    marker = setup_env.root / "installed"
    count = setup_env.root / "count"
    setup_env.registry(
        tools(command_step("tool", f"echo x >> {count}; touch {marker}", check=f"test -f {marker}"))
    )
    assert setup_env.run().returncode == 0
    assert setup_env.states() == {"tool": "ok"}
    again = setup_env.run()
    assert again.returncode == 0
    assert setup_env.states() == {"tool": "skipped"}
    assert setup_env.status().step("tool").reason.startswith("check passed")
    assert count.read_text() == "x\n"  # the install ran once


def test_retry_failed_reruns_only_what_failed(setup_env: SetupEnv) -> None:
    flag = setup_env.root / "network-is-back"
    runs = setup_env.root / "runs"
    setup_env.registry(
        tools(
            command_step("flaky", f"test -f {flag} || {{ echo 'registry unreachable'; exit 1; }}"),
            command_step("steady", f"echo run >> {runs}"),
        )
    )
    assert setup_env.run().returncode == 1
    assert setup_env.states() == {"flaky": "failed", "steady": "ok"}
    flag.touch()
    retry = setup_env.run("--retry-failed")
    assert retry.returncode == 0, retry.stdout
    assert setup_env.states() == {"flaky": "ok", "steady": "ok"}
    assert setup_env.status().state.value == "done"
    assert runs.read_text() == "run\n"  # the good step was not run again
    assert "nothing failed last time" in setup_env.run("--retry-failed").stdout


def test_one_runner_at_a_time(setup_env: SetupEnv) -> None:
    setup_env.registry(tools(command_step("long", "sleep 30")))
    first = setup_env.start()
    try:
        wait_until(lambda: setup_env.states().get("long") == "running", timeout=10, what="first run started")
        second = setup_env.run()
        assert second.returncode == 3
        assert f"setup is already running (pid {first.pid})" in second.stdout
    finally:
        first.terminate()
        first.wait(timeout=10)


def test_sigterm_stops_the_steps_and_records_it(setup_env: SetupEnv) -> None:
    pidfile = setup_env.root / "pid"
    setup_env.registry(tools(command_step("long", f"echo $$ > {pidfile}; exec sleep 60")))
    runner = setup_env.start()
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=10, what="step started")
    step_pid = int(pidfile.read_text())
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=10) == 1
    wait_until(lambda: not Path(f"/proc/{step_pid}").exists(), timeout=5, what="the step's process killed")
    status = setup_env.status()
    assert status.state.value == "failed"
    assert status.step("long").reason.startswith("interrupted")


def test_status_file_is_always_valid_json_even_when_the_runner_is_killed(setup_env: SetupEnv) -> None:
    # Chatty steps make the runner rewrite the status file as fast as it can.
    chatty = "i=0; while [ $i -lt 4000 ]; do echo line $i; i=$((i+1)); done; sleep 5"
    setup_env.registry(tools(*(command_step(f"s{i}", chatty) for i in range(6))))
    path = status_path(setup_env.settings)
    reads, errors = [0], []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                json.loads(data)
                reads[0] += 1
            except ValueError as exc:
                errors.append(f"{exc}: {data[:80]!r}")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for delay in (0.2, 0.45, 0.7):
            runner = setup_env.start()
            wait_until(lambda: path.exists(), timeout=10, what="status file")
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                json.loads(path.read_bytes())  # keep polling while it writes
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait(timeout=10)
            json.loads(path.read_bytes())
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not errors, errors[:3]
    assert reads[0] > 10
    # The killed runner never released the lock file by hand; the next run still gets it.
    setup_env.registry(tools(command_step("after", "true")))
    assert setup_env.run().returncode == 0


def test_disabled_setup_does_nothing(setup_env: SetupEnv) -> None:
    setup_env.registry(tools(command_step("a", "true")))
    setup_env.env["CODING_AGENTS_SETUP"] = "off"
    result = setup_env.run()
    assert result.returncode == 0 and "setup is off" in result.stdout
    assert not status_path(setup_env.settings).exists()


def test_a_bad_registry_exits_2_with_the_problem(setup_env: SetupEnv) -> None:
    setup_env.registry("agents:\n  x:\n    title: X\n")
    result = setup_env.run()
    assert result.returncode == 2
    assert "agents.x: missing field 'package'" in result.stdout


def test_a_bad_registry_is_the_runs_reason_on_the_page(setup_env: SetupEnv) -> None:
    setup_env.registry("agents:\n  x:\n    title: X\n")
    assert setup_env.run().returncode == 2
    status = setup_env.status()
    assert status.state.value == "failed" and "agents.x: missing field 'package'" in status.reason


def test_a_run_whose_runner_died_reads_as_failed(setup_env: SetupEnv) -> None:
    pidfile = setup_env.root / "pid"
    setup_env.registry(tools(command_step("long", f"echo $$ > {pidfile}; exec sleep 60")))
    runner = setup_env.start()
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=10, what="step started")
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(timeout=10)
    os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the orphaned step, in its own session
    status = setup_env.status()
    assert status.state.value == "failed" and "stopped before it finished" in status.reason
    assert status.step("long").state.value == "failed"
