"""A fresh container's start: time to the first prompt and to "projects restored", with and without
projects to restore, for this tree and a baseline commit in the same run.

    .venv/bin/python scripts/bench_restore.py [BASELINE_REV] [ROUNDS]

Each run starts the whole app with scripts/run (own HOME, state dir and port) against the fake
workspace on 127.0.0.1, seeded with PROJECTS repositories (files, bundle, manifest) as the sync
leaves them. The baseline is `git archive`d into a temporary folder and shares this tree's .venv.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_workspace import FakeWorkspace  # noqa: E402
from tests.helpers import TermClient, free_port, stack_env  # noqa: E402

TOKEN = "bench-token-0123456789"
OWNER_TOKEN = "dapi-bench-owner"
EMAIL = "owner@example.com"
PROJECTS = 3
GIT_ENV = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@x",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


def seed(ws: FakeWorkspace, scratch: Path) -> None:
    root = f"/Users/{EMAIL}/projects"
    ws.dirs |= {"/Users", f"/Users/{EMAIL}", root}
    for i in range(PROJECTS):
        name = f"project{i}"
        repo = scratch / name
        repo.mkdir(parents=True)
        run = functools.partial(git, repo)
        run("init", "-q", "-b", "main")
        files = {f"src/m{j}.py": f"V = {j}\n" * 50 for j in range(40)}
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        run("add", "-A")
        for k in range(20):
            run("commit", "-q", "--allow-empty", "-m", f"c{k}")
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        run("bundle", "create", "-q", str(scratch / f"{name}.bundle"), "--all")
        for rel, text in files.items():
            ws.files[f"{root}/{name}/{rel}"] = text.encode()
            ws.dirs.add(f"{root}/{name}/{rel.rsplit('/', 1)[0]}")
        ws.dirs.add(f"{root}/{name}")
        ws.files[f"{root}/{name}.bundle"] = (scratch / f"{name}.bundle").read_bytes()
        manifest = {"version": 1, "repo": name, "commit": head, "head_ref": "refs/heads/main", "bundle": True}
        ws.files[f"{root}/{name}.sync.json"] = json.dumps({**manifest, "remotes": {}}).encode()


def restored(projects: Path) -> bool:
    return all((projects / f"project{i}" / "src" / "m0.py").exists() for i in range(PROJECTS))


async def one_start(tree: Path, with_projects: bool) -> tuple[float, float | None, bool]:
    """(seconds to the first prompt, seconds to every project restored, whether the notice showed)."""
    scratch = Path(tempfile.mkdtemp(prefix="ca-bench-restore-", dir="/tmp"))
    ws = FakeWorkspace()
    ws.add_user(OWNER_TOKEN, EMAIL, "Owner")
    if with_projects:
        seed(ws, scratch / "seed")
    ws.start()
    home = scratch / "home"
    home.mkdir()
    port = free_port()
    env = stack_env(
        home, scratch / "state", port, TOKEN, DATABRICKS_HOST=ws.url, DATABRICKS_TOKEN=OWNER_TOKEN
    )
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(tree / "scripts/run")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        done_at: list[float] = []

        async def watch_projects() -> None:
            while not restored(home / "projects"):
                await asyncio.sleep(0.01)
            done_at.append(time.perf_counter() - start)

        watcher = asyncio.create_task(watch_projects()) if with_projects else None
        while True:
            try:
                client = await TermClient.connect(
                    f"http://127.0.0.1:{port}", "main", TOKEN, cols=120, rows=40
                )
                await client.wait_ready(5)
                break
            except Exception:
                await asyncio.sleep(0.02)
        await client.read_until(lambda c: re.search(r"[$#] $", c.text.rstrip("\r\n ") + " ") is not None, 20)
        prompt = time.perf_counter() - start
        noticed = "[coding-agents]" in client.text
        if watcher is not None:
            await asyncio.wait_for(watcher, 60)
        return prompt, (done_at[0] if done_at else None), noticed
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        ws.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def baseline_tree(rev: str) -> Path:
    tree = Path(tempfile.mkdtemp(prefix="ca-bench-baseline-", dir="/tmp"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / ".venv").symlink_to(ROOT / ".venv")
    (tree / "web" / "node_modules").symlink_to(ROOT / "web" / "node_modules")
    return tree


async def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD~4"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    base = baseline_tree(rev)
    print(f"# fresh-container start, {PROJECTS} projects, {rounds} rounds each, {os.cpu_count()} cores")
    print(f"# baseline: {rev}")
    try:
        for label, tree in (("this tree", ROOT), ("baseline", base)):
            for with_projects in (False, True):
                runs = [await one_start(tree, with_projects) for _ in range(rounds)]
                prompts = [r[0] for r in runs]
                line = (
                    f"{label:>10} | {'with' if with_projects else 'without'} projects | first prompt median "
                )
                line += f"{statistics.median(prompts):.2f} s ({', '.join(f'{p:.2f}' for p in prompts)})"
                if with_projects:
                    done = [r[1] for r in runs if r[1] is not None]
                    each = ", ".join(f"{d:.2f}" for d in done)
                    line += f" | restored median {statistics.median(done):.2f} s ({each})"
                    line += f" | notice in first shell {sum(r[2] for r in runs)}/{rounds}"
                print(line, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
