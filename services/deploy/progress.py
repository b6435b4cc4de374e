"""What the deploy prints: one header per step, indented detail lines, and failures in plain words."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO


class DeployError(Exception):
    """A step failed; `what` says what happened (the workspace's own words when it answered), `hint`
    what the deployer can do about it. Both are printed as is, so neither may hold a secret."""

    def __init__(self, step: str, what: str, hint: str = "") -> None:
        self.step, self.what, self.hint = step, what, hint
        super().__init__(f"{step}: {what}" + (f" ({hint})" if hint else ""))


class UsageError(DeployError):
    """A bad flag or argument value: exit 2, like argparse."""

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__("usage", what, hint)


@dataclass
class Progress:
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    total: int = 6
    number: int = 0

    def step(self, title: str) -> None:
        self.number += 1
        print(f"[{self.number}/{self.total}] {title}", file=self.out, flush=True)

    def line(self, text: str) -> None:
        print(f"      {text}", file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"      warning: {text}", file=self.err, flush=True)

    def failed(self, error: DeployError) -> None:
        print(f"deploy failed at step '{error.step}': {error.what}", file=self.err, flush=True)
        if error.hint:
            print(f"  hint: {error.hint}", file=self.err, flush=True)
