"""The container's memory, read from fake cgroup trees (v2, v1, none) built in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.memory import MIB, MemoryProbe, MemoryUnreadable, node_heap_mb

GIB = 1024 * MIB
HOST_TOTAL = 64 * GIB


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def meminfo(root: Path, total: int = HOST_TOTAL, available: int | None = 40 * GIB) -> None:
    lines = [f"MemTotal:       {total // 1024} kB", f"MemFree:        {1024 * 1024} kB"]
    if available is not None:
        lines.append(f"MemAvailable:   {available // 1024} kB")
    write(root / "proc/meminfo", "\n".join(lines) + "\n")


def cgroup_v2(
    folder: Path, limit: int | str, current: int, inactive_file: int = 0, controllers: bool = False
) -> None:
    write(folder / "memory.max", f"{limit}\n")
    write(folder / "memory.current", f"{current}\n")
    write(folder / "memory.stat", f"anon {current}\nfile 0\nactive_file 0\ninactive_file {inactive_file}\n")
    if controllers:
        write(folder / "cgroup.controllers", "cpu memory pids\n")


def v2_tree(tmp_path: Path, own: str = "/") -> Path:
    meminfo(tmp_path)
    write(tmp_path / "proc/self/cgroup", f"0::{own}\n")
    mount = tmp_path / "sys/fs/cgroup"
    write(mount / "cgroup.controllers", "cpu memory pids\n")
    return mount


def test_cgroup_v2_namespaced_container(tmp_path: Path) -> None:
    # The usual container: its own cgroup is mounted at /sys/fs/cgroup and /proc/self/cgroup says "/".
    mount = v2_tree(tmp_path)
    cgroup_v2(mount, 6 * GIB, 5 * GIB, inactive_file=512 * MIB)
    status = MemoryProbe(tmp_path).read()
    assert status.source == "cgroup v2"
    assert status.limit == 6 * GIB
    # The inactive page cache is reclaimable, so it counts as available.
    assert status.available == 6 * GIB - (5 * GIB - 512 * MIB)
    body = status.to_json(warn_percent=15)
    assert body == {
        "limit_mb": 6144,
        "used_mb": 4608,
        "available_mb": 1536,
        "available_percent": 25.0,
        "low": False,
        "source": "cgroup v2",
    }
    assert MemoryProbe(tmp_path).limit_bytes() == 6 * GIB


def test_cgroup_v2_low_memory_is_flagged(tmp_path: Path) -> None:
    mount = v2_tree(tmp_path)
    cgroup_v2(mount, 6 * GIB, 6 * GIB - 300 * MIB)
    body = MemoryProbe(tmp_path).read().to_json(warn_percent=15)
    assert body["available_mb"] == 300 and body["low"] is True


def test_cgroup_v2_nested_path_and_a_parents_limit(tmp_path: Path) -> None:
    # Without a cgroup namespace we sit deeper in the tree; our own level says "max", the parent binds.
    mount = v2_tree(tmp_path, own="/apps/coding-agents")
    cgroup_v2(mount, "max", 20 * GIB)
    cgroup_v2(mount / "apps", 4 * GIB, 3 * GIB)
    cgroup_v2(mount / "apps/coding-agents", "max", 1 * GIB)
    status = MemoryProbe(tmp_path).read()
    assert (status.source, status.limit, status.available) == ("cgroup v2", 4 * GIB, 1 * GIB)


def test_cgroup_v2_without_a_limit_falls_back_to_meminfo(tmp_path: Path) -> None:
    mount = v2_tree(tmp_path)
    cgroup_v2(mount, "max", 2 * GIB)
    status = MemoryProbe(tmp_path).read()
    assert (status.source, status.limit, status.available) == ("meminfo", HOST_TOTAL, 40 * GIB)
    assert MemoryProbe(tmp_path).limit_bytes() is None


def test_the_hosts_available_memory_caps_the_containers(tmp_path: Path) -> None:
    # An overcommitted host runs out before our limit does.
    mount = v2_tree(tmp_path)
    meminfo(tmp_path, available=200 * MIB)
    cgroup_v2(mount, 6 * GIB, 1 * GIB)
    assert MemoryProbe(tmp_path).read().available == 200 * MIB


def test_cgroup_v1_with_the_hierarchical_cache_figure(tmp_path: Path) -> None:
    meminfo(tmp_path)
    write(tmp_path / "proc/self/cgroup", "4:memory:/process_api/abc\n1:cpu:/\n0::/\n")
    mount = tmp_path / "sys/fs/cgroup/memory"
    write(mount / "memory.limit_in_bytes", "9223372036854771712\n")  # the root: unlimited
    write(mount / "memory.usage_in_bytes", f"{30 * GIB}\n")
    own = mount / "process_api/abc"
    write(own / "memory.limit_in_bytes", f"{2 * GIB}\n")
    write(own / "memory.usage_in_bytes", f"{1536 * MIB}\n")
    write(own / "memory.stat", f"inactive_file {10 * MIB}\ntotal_inactive_file {256 * MIB}\n")
    status = MemoryProbe(tmp_path).read()
    assert (status.source, status.limit) == ("cgroup v1", 2 * GIB)
    assert status.available == 2 * GIB - (1536 * MIB - 256 * MIB)


def test_cgroup_v1_unlimited_falls_back_to_meminfo(tmp_path: Path) -> None:
    meminfo(tmp_path)
    write(tmp_path / "proc/self/cgroup", "4:memory:/\n")
    mount = tmp_path / "sys/fs/cgroup/memory"
    write(mount / "memory.limit_in_bytes", "9223372036854771712\n")
    write(mount / "memory.usage_in_bytes", f"{1 * GIB}\n")
    assert MemoryProbe(tmp_path).read().source == "meminfo"


def test_meminfo_only(tmp_path: Path) -> None:
    meminfo(tmp_path, total=8 * GIB, available=None)  # a kernel before 3.14: MemFree stands in
    status = MemoryProbe(tmp_path).read()
    assert (status.source, status.limit, status.available) == ("meminfo", 8 * GIB, 1 * GIB)


def test_nothing_readable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MemoryUnreadable, match="cannot read /proc/meminfo"):
        MemoryProbe(tmp_path).read()
    assert MemoryProbe(tmp_path).limit_bytes() is None


def test_this_machine_reads_without_error() -> None:
    status = MemoryProbe().read()
    assert 0 < status.available <= status.limit


@pytest.mark.parametrize(
    ("limit", "heap_mb"),
    [(6 * GIB, 1536), (2 * GIB, 512), (512 * MIB, 256), (64 * GIB, 4096)],
    ids=["apps-6g", "2g", "tiny-floor", "huge-cap"],
)
def test_node_heap_is_a_quarter_of_the_limit_within_bounds(limit: int, heap_mb: int) -> None:
    assert node_heap_mb(limit) == heap_mb
