"""Cold start in the Apps-like sandbox (tests/sandbox.py): the app's command → an answer in the terminal.

Each run starts from a wiped folder, as every Databricks Apps restart does. Ours: the deploy set as
scripts/deploy stages it, requirements.txt installed by the "platform" before the command. Baseline,
in the same run: the tracked files only, as deployed before staging existed, so scripts/run
bootstraps uv, a venv and npm ci (from the package registries) at every start. Setup runs with the
real agents.yaml, so the agents install in the background meanwhile, as they do on a real start.
Needs root (it creates the sandbox user).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import sandbox  # noqa: E402
from tests.apps_proxy import AppsProxy  # noqa: E402
from tests.helpers import FileServer, TermClient, gzipped_system_tmux  # noqa: E402

ASSET = "/tmux.gz"
RUNS = 3
DEADLINE = 300.0


def row(label: str, value: str, baseline: str, target: str) -> None:
    print(f"{label:<44} {value:>22}   baseline {baseline:<22} target {target}", flush=True)


async def first_answer(url: str, started: float) -> float:
    """Seconds from `started` until a terminal through the proxy answers a command."""
    while time.monotonic() - started < DEADLINE:
        try:
            client = await TermClient.connect(url, "main", None, cols=120, rows=40)
            try:
                await client.wait_ready(5)
                await client.type("echo $((6*7))x\r")
                await client.wait_text("42x", 10)
                return time.monotonic() - started
            finally:
                client.close()
        except Exception:
            await asyncio.sleep(0.02)
    raise TimeoutError(f"no terminal within {DEADLINE:.0f} s")


async def one_start(staged: bool, tmux: FileServer, checksum: str) -> float:
    box = sandbox.build(staged=staged)
    try:
        with AppsProxy(box.port, sandbox.OWNER) as proxy:
            box.start({"CODING_AGENTS_TMUX_URL": tmux.url(ASSET), "CODING_AGENTS_TMUX_SHA256": checksum})
            try:
                return await first_answer(proxy.url, box.started_at)
            except TimeoutError:
                print(box.output()[-4000:], file=sys.stderr)
                raise
    finally:
        box.stop()
        shutil.rmtree(box.base, ignore_errors=True)


async def main() -> None:
    why = sandbox.unavailable()
    if why:
        print(f"apps sandbox: skipped ({why})")
        return
    payload, checksum = gzipped_system_tmux()
    ours: list[float] = []
    before: list[float] = []
    with FileServer({ASSET: payload}) as tmux:
        for _ in range(RUNS):  # interleaved: the machine's drift hits both alike
            ours.append(await one_start(True, tmux, checksum))
            with contextlib.suppress(TimeoutError):
                before.append(await one_start(False, tmux, checksum))
    shown = ", ".join(f"{s:.2f}" for s in ours)
    baseline = f"{statistics.median(before):.1f} s unstaged" if before else "unstaged: did not start"
    row(
        "Apps sandbox: app command -> first answer",
        f"{statistics.median(ours):.2f} s ({shown})",
        baseline,
        "<= 5 s",
    )


if __name__ == "__main__":
    asyncio.run(main())
