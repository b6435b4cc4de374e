"""Benchmark the model proxy: per-request overhead and time to first streamed byte, each beside the
same request sent straight to the fake model server in this run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.statefiles import StateFiles  # noqa: E402
from tests.fake_models import FakeModels  # noqa: E402
from tests.helpers import free_port  # noqa: E402

PAT = "dapi-bench-0123456789"
SAMPLES = 200
STREAMS = 20  # of 6 events each, paced like a model generating tokens
EVENT_INTERVAL = 0.02
BODY = {
    "model": "databricks-claude-opus-4-6",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}


def row(label: str, value: str, baseline: str, target: str) -> None:
    print(f"{label:<44} {value:>22}   baseline {baseline:<22} target {target}")


def post(url: str, key: str, stream: bool) -> tuple[float, float]:
    """(time to first body byte, total) in ms for one request on a fresh connection."""
    data = json.dumps({**BODY, "stream": stream}).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read(1)
        first = time.perf_counter()
        response.read()
    end = time.perf_counter()
    return (first - start) * 1000, (end - start) * 1000


def event_lateness(url: str, key: str, interval: float) -> float:
    """Worst lateness in ms of one stream's events against the fake's schedule (one event every
    `interval` s after the first): what buffering on the way (Nagle, flushing) adds to each token."""
    data = json.dumps({**BODY, "stream": True}).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    arrivals: list[float] = []
    with urllib.request.urlopen(request, timeout=10) as response:
        while chunk := response.read1(65536):
            arrivals += [time.perf_counter()] * chunk.count(b"\n\n")
    return max((t - arrivals[0] - i * interval) * 1000 for i, t in enumerate(arrivals))


def measure(url: str, key: str, stream: bool) -> tuple[list[float], list[float]]:
    firsts, totals = [], []
    for _ in range(SAMPLES):
        first, total = post(url, key, stream)
        firsts.append(first)
        totals.append(total)
    return firsts, totals


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="ca-benchp-", dir="/tmp"))
    fake = FakeModels(tokens={PAT}).start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "CODING_AGENTS_"))},
        "HOME": str(root),
        "CODING_AGENTS_STATE_DIR": str(root / "state"),
        "CODING_AGENTS_PROXY_PORT": str(port),
        "DATABRICKS_HOST": fake.url,
        "DATABRICKS_TOKEN": PAT,
    }
    proxy = subprocess.Popen(
        [sys.executable, "-m", "services.model_proxy"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        key_file = root / "state" / "model-proxy.key"
        deadline = time.monotonic() + 20
        while not StateFiles(root / "state").model_proxy_status.exists():
            if time.monotonic() > deadline:
                raise SystemExit("model proxy did not start")
            time.sleep(0.02)
        key = key_file.read_text().strip()
        direct_url = f"{fake.url}/serving-endpoints/anthropic/v1/messages"
        proxied_url = f"http://127.0.0.1:{port}/a/bench/anthropic/v1/messages"
        for url, k in ((direct_url, PAT), (proxied_url, key)):  # warm both paths (imports, token)
            post(url, k, False)
        _, direct = measure(direct_url, PAT, False)
        _, proxied = measure(proxied_url, key, False)
        d50, p50 = statistics.median(direct), statistics.median(proxied)
        row(
            f"proxy JSON request median ({SAMPLES})",
            f"{p50:.2f} ms (+{p50 - d50:.2f})",
            f"direct {d50:.2f} ms",
            "overhead <= 2 ms",
        )
        direct_first, _ = measure(direct_url, PAT, True)
        proxied_first, _ = measure(proxied_url, key, True)
        df, pf = statistics.median(direct_first), statistics.median(proxied_first)
        row(
            "proxy SSE first byte median",
            f"{pf:.2f} ms (+{pf - df:.2f})",
            f"direct {df:.2f} ms",
            "within 5 ms",
        )
        fake.event_interval = EVENT_INTERVAL
        direct_late = [event_lateness(direct_url, PAT, EVENT_INTERVAL) for _ in range(STREAMS)]
        proxied_late = [event_lateness(proxied_url, key, EVENT_INTERVAL) for _ in range(STREAMS)]
        row(
            f"SSE event lateness, worst of {STREAMS} streams",
            f"{max(proxied_late):.2f} ms",
            f"direct {max(direct_late):.2f} ms",
            "-",
        )
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(10)
        fake.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
