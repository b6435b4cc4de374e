"""The live processes this user can see, from /proc (Linux): parent, resident memory, name."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    rss_bytes: int
    name: str  # the kernel's short command name (15 characters at most)


def snapshot() -> dict[int, Proc]:
    """Every live process by pid, zombies excluded; empty where there is no /proc."""
    table: dict[int, Proc] = {}
    if not PROC.is_dir():
        return table
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        head, _, tail = stat.rpartition(")")
        fields = tail.split()
        if not fields or fields[0] == "Z":
            continue
        # stat(5): after the name come state (field 3), ppid (4), … rss in pages (24).
        name = head.partition("(")[2]
        table[int(entry.name)] = Proc(int(entry.name), int(fields[1]), int(fields[21]) * PAGE_BYTES, name)
    return table


def descendants(table: dict[int, Proc], root: int) -> list[int]:
    """Every process below `root`, parents before children."""
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: list[int] = []
    queue = list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def rss(table: dict[int, Proc], pids: Iterable[int]) -> int:
    """Resident bytes of these processes, summed (pages shared between them are counted each time)."""
    return sum(table[p].rss_bytes for p in pids if p in table)
