"""Processes that start with the terminal must not pay for databricks-sdk before they need it."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["services.gateway.__main__", "services.model_proxy.__main__", "services.sync.__main__"]
)
def test_starts_without_importing_databricks_sdk(module: str) -> None:
    # Importing databricks-sdk costs ~1.5 CPU-seconds; at start it competed with the first prompt for
    # two cores (scripts/bench before this was lazy: cold start 1.12 s, echo p99 5.2 ms).
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('databricks')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
