"""Setup runner fixtures: a temp HOME and state dir, registries written per test, the runner as the
real `python -m services.setup` process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.config import PROJECT_ROOT, Settings
from services.setup.status import SetupStatus, read_status, status_path
from tests.helpers import env_for_subprocess, short_tempdir


@dataclass
class SetupEnv:
    root: Path
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    def registry(self, text: str) -> Path:
        path = self.root / "agents.yaml"
        path.write_text(text)
        self.env["CODING_AGENTS_REGISTRY"] = str(path)
        return path

    def status(self) -> SetupStatus:
        return read_status(status_path(self.settings))

    def states(self) -> dict[str, str]:
        return {s.id: s.state.value for s in self.status().steps}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.setup", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """The runner in the background, its output in runner.out."""
        with (self.root / "runner.out").open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "services.setup", *args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


@pytest.fixture
def setup_env() -> Iterator[SetupEnv]:
    root = short_tempdir("cas-")
    (root / "home").mkdir()
    env = env_for_subprocess() | {
        "HOME": str(root / "home"),
        "CODING_AGENTS_STATE_DIR": str(root / "state"),
    }
    yield SetupEnv(root, env)
    subprocess.run(["rm", "-rf", str(root)], check=False)


def command_step(
    step_id: str, script: str, after: tuple[str, ...] = (), timeout: float | None = None, check: str = ""
) -> str:
    """A `kind: command` registry entry running `sh -c script` (a real subprocess)."""
    lines = [
        f"  {step_id}:",
        f"    title: Step {step_id}",
        "    kind: command",
        f"    run: [sh, -c, {script!r}]",
    ]
    if after:
        lines.append(f"    after: [{', '.join(after)}]")
    if timeout is not None:
        lines.append(f"    timeout: {timeout}")
    if check:
        lines.append(f"    check: [sh, -c, {check!r}]")
    return "\n".join(lines) + "\n"


def tools(*entries: str) -> str:
    return "tools:\n" + "".join(entries)
