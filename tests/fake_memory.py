"""A fake container for services.memory: a folder standing in for / with a cgroup v2 tree."""

from __future__ import annotations

from pathlib import Path

MIB = 1024 * 1024
HOST_KB = 64 * 1024 * 1024  # a 64 GiB host: far above any container limit here


class FakeContainer:
    """cgroup v2 files under `root` (pass it as CODING_AGENTS_MEMORY_ROOT); `set_available` rewrites
    memory.current so the next read sees that much free, as a real container filling up would."""

    def __init__(self, root: Path, limit_mib: int = 6144, available_mib: int | None = None) -> None:
        self.root = root
        self.limit_mib = limit_mib
        (root / "proc/self").mkdir(parents=True, exist_ok=True)
        (root / "proc/meminfo").write_text(f"MemTotal: {HOST_KB} kB\nMemAvailable: {HOST_KB - 1024} kB\n")
        (root / "proc/self/cgroup").write_text("0::/\n")
        self.cgroup = root / "sys/fs/cgroup"
        self.cgroup.mkdir(parents=True, exist_ok=True)
        (self.cgroup / "cgroup.controllers").write_text("cpu memory pids\n")
        (self.cgroup / "memory.max").write_text(f"{limit_mib * MIB}\n")
        (self.cgroup / "memory.stat").write_text("anon 0\ninactive_file 0\n")
        self.set_available(limit_mib - 500 if available_mib is None else available_mib)

    def set_available(self, available_mib: int) -> None:
        (self.cgroup / "memory.current").write_text(f"{(self.limit_mib - available_mib) * MIB}\n")
