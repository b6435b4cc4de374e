"""How much memory the container has left, read the way the OOM killer sees it.

Databricks Apps runs the app in a container with a memory limit (6 GB by default) on a host with far
more RAM: /proc/meminfo describes the host, the cgroup describes us. So: cgroup v2 (memory.max,
memory.current, memory.stat inactive_file), else cgroup v1 (memory.limit_in_bytes, usage_in_bytes,
total_inactive_file), else /proc/meminfo MemAvailable. Every level from our own cgroup up to the
root counts (a parent's limit binds us too), and so does the host's MemAvailable (an overcommitted
host runs out before our limit does).

Available = limit - (usage - inactive file cache): cache the kernel drops before it kills anyone is
not "used" (the kubelet's working set). Everything is read from files under `root` (normally `/`)
so tests build a fake tree in a temp dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
# cgroup v1 writes "no limit" as a huge page-aligned number (2^63 - 4096 on x86-64).
V1_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class MemoryStatus:
    """The container's memory now; bytes."""

    limit: int
    available: int
    source: str  # "cgroup v2", "cgroup v1" or "meminfo": where the limit came from

    @property
    def used(self) -> int:
        return max(0, self.limit - self.available)

    @property
    def available_percent(self) -> float:
        return 100.0 * self.available / self.limit if self.limit else 100.0

    def to_json(self, warn_percent: float) -> dict[str, Any]:
        return {
            "limit_mb": self.limit // MIB,
            "used_mb": self.used // MIB,
            "available_mb": self.available // MIB,
            "available_percent": round(self.available_percent, 1),
            "low": self.available_percent < warn_percent,
            "source": self.source,
        }


class MemoryUnreadable(OSError):
    """Neither a cgroup nor /proc/meminfo could be read (not Linux, or /proc not mounted)."""


@dataclass(frozen=True)
class _Level:
    limit: int
    working_set: int


class MemoryProbe:
    """Reads the container's memory from the files under `root` (see the module doc)."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def read(self) -> MemoryStatus:
        """The current status; MemoryUnreadable when no source can be read."""
        host_total, host_available = self._meminfo()
        for source, read_levels in (("cgroup v2", self._v2_levels), ("cgroup v1", self._v1_levels)):
            try:
                levels = read_levels()
            except OSError:  # a hierarchy we may not read (EACCES): as good as none
                levels = []
            limited = [lv for lv in levels if lv.limit < host_total]
            if limited:
                tightest = min(limited, key=lambda lv: lv.limit - lv.working_set)
                available = max(0, min(tightest.limit - tightest.working_set, host_available))
                return MemoryStatus(min(lv.limit for lv in limited), available, source)
        return MemoryStatus(host_total, host_available, "meminfo")

    def limit_bytes(self) -> int | None:
        """The container's limit, or None when only the host's RAM bounds us (or nothing is readable)."""
        try:
            status = self.read()
        except MemoryUnreadable:
            return None
        return None if status.source == "meminfo" else status.limit

    # --- sources ---------------------------------------------------------------------------------

    def _meminfo(self) -> tuple[int, int]:
        try:
            text = (self.root / "proc/meminfo").read_text()
        except OSError as exc:
            raise MemoryUnreadable(f"cannot read /proc/meminfo: {exc.strerror or exc}") from None
        fields: dict[str, int] = {}
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                fields[name.strip()] = int(parts[0]) * 1024  # meminfo is in kB
        if "MemTotal" not in fields:
            raise MemoryUnreadable("/proc/meminfo has no MemTotal")
        # Kernels before 3.14 lack MemAvailable; free memory is the pessimistic stand-in.
        available = fields.get("MemAvailable", fields.get("MemFree", fields["MemTotal"]))
        return fields["MemTotal"], available

    def _own_cgroup(self, controller: str) -> str:
        """Our path in a hierarchy: "" for cgroup v2's unified line, else the controller's name."""
        try:
            text = (self.root / "proc/self/cgroup").read_text()
        except OSError:
            return "/"
        for line in text.splitlines():
            _, controllers, path = [*line.split(":", 2), "", ""][:3]
            if controllers == controller or controller in controllers.split(","):
                return path or "/"
        return "/"

    def _chain(self, mount: Path, own: str) -> list[Path]:
        """Our cgroup folder and its parents up to the mount. Inside a cgroup namespace (the usual
        container) the mount already is our cgroup and the path in /proc/self/cgroup is "/"."""
        start = mount / own.lstrip("/")
        if not start.is_dir():
            start = mount
        chain = [start]
        while chain[-1] != mount and mount in chain[-1].parents:
            chain.append(chain[-1].parent)
        return chain

    def _v2_levels(self) -> list[_Level]:
        mount = self.root / "sys/fs/cgroup"
        if not (mount / "cgroup.controllers").exists():
            return []
        levels = []
        for folder in self._chain(mount, self._own_cgroup("")):
            limit = _read_int(folder / "memory.max")  # "max" → None
            usage = _read_int(folder / "memory.current")
            if limit is None or usage is None:
                continue
            levels.append(_Level(limit, max(0, usage - _stat(folder, "inactive_file"))))
        return levels

    def _v1_levels(self) -> list[_Level]:
        mount = self.root / "sys/fs/cgroup/memory"
        if not mount.is_dir():
            return []
        levels = []
        for folder in self._chain(mount, self._own_cgroup("memory")):
            limit = _read_int(folder / "memory.limit_in_bytes")
            usage = _read_int(folder / "memory.usage_in_bytes")
            if limit is None or usage is None or limit >= V1_UNLIMITED:
                continue
            inactive = _stat(folder, "total_inactive_file") or _stat(folder, "inactive_file")
            levels.append(_Level(limit, max(0, usage - inactive)))
        return levels


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stat(folder: Path, key: str) -> int:
    try:
        text = (folder / "memory.stat").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


# --- Node's heap cap -------------------------------------------------------------------------------

# A quarter of the container per Node process: one runaway agent dies of "JavaScript heap out of
# memory" on its own instead of the OOM killer taking every shell; measured agents use ~0.3-0.4 GB.
NODE_HEAP_SHARE = 0.25
NODE_HEAP_MIN_MB = 256
# V8's own default on a 64-bit host with plenty of RAM (4144 MiB measured with Node 20 on 24 GB).
NODE_HEAP_MAX_MB = 4096


def node_heap_mb(limit_bytes: int) -> int:
    """The --max-old-space-size (MiB) for Node processes in a container limited to `limit_bytes`."""
    share = int(limit_bytes * NODE_HEAP_SHARE) // MIB
    return max(NODE_HEAP_MIN_MB, min(NODE_HEAP_MAX_MB, share))
