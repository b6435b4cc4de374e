"""`scripts/ctl procs [--json]`: what runs in each session and in the app itself, with its memory.

Each tmux pane counts its whole process tree (an agent and everything it started); each program of
supervisord its own tree, the tmux server without its panes; "left behind" are processes whose
parent ended (`nohup cmd &`, daemons), which services.reaper adopted and ends when the app stops.
Memory is resident (RSS), summed per tree: pages shared between processes count once per process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services import proctable
from services.config import ConfigError, Settings
from services.proctable import Proc
from services.supervisor_client import SupervisorUnavailable, programs

PANE_FORMAT = "#{session_name}\t#{window_index}\t#{window_name}\t#{pane_index}\t#{pane_pid}"
TOP = 3  # the biggest processes named per tree


@dataclass
class Tree:
    label: str
    pid: int
    processes: int
    rss_bytes: int
    top: list[str] = field(default_factory=list)  # "claude 250.3 MiB", biggest first


@dataclass
class Session:
    name: str
    rss_bytes: int
    panes: list[Tree]


@dataclass
class Report:
    sessions: list[Session]
    programs: list[Tree]
    left_behind: list[Tree]
    total_rss_bytes: int
    notes: list[str]


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def tree(table: dict[int, Proc], label: str, root: int, exclude: set[int] | None = None) -> Tree:
    pids = [root, *proctable.descendants(table, root)]
    if exclude:
        pids = [p for p in pids if p not in exclude]
    biggest = sorted((table[p] for p in pids if p in table), key=lambda p: p.rss_bytes, reverse=True)
    return Tree(
        label,
        root,
        len([p for p in pids if p in table]),
        proctable.rss(table, pids),
        [f"{p.name} {mib(p.rss_bytes)}" for p in biggest[:TOP]],
    )


def tmux_panes(settings: Settings) -> tuple[list[tuple[str, str, int]], str]:
    """(session, "window:index name.pane", pane pid) for every pane; a note when tmux does not answer."""
    try:
        result = subprocess.run(
            [settings.tmux_bin, "-S", str(settings.tmux_socket), "list-panes", "-a", "-F", PANE_FORMAT],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"tmux did not answer: {exc}"
    if result.returncode != 0:
        return [], f"no tmux server ({result.stderr.strip() or 'exit ' + str(result.returncode)})"
    panes = []
    for line in result.stdout.splitlines():
        session, window, window_name, pane, pid = line.split("\t")
        panes.append((session, f"window {window} ({window_name}) pane {pane}", int(pid)))
    return panes, ""


def build_report(settings: Settings) -> Report:
    notes: list[str] = []
    table = proctable.snapshot()
    if not table:
        notes.append("no /proc on this system: process memory cannot be read")
    panes, note = tmux_panes(settings)
    if note:
        notes.append(note)
    sessions: dict[str, Session] = {}
    pane_pids: set[int] = set()
    for session, label, pid in panes:
        pane = tree(table, label, pid)
        pane_pids.update([pid, *proctable.descendants(table, pid)])
        entry = sessions.setdefault(session, Session(session, 0, []))
        entry.panes.append(pane)
        entry.rss_bytes += pane.rss_bytes
    program_trees: list[Tree] = []
    try:
        running = programs(settings.files.supervisor_socket)
    except SupervisorUnavailable as exc:
        running = {}
        notes.append(f"supervisord: {exc}")
    for name, info in sorted(running.items()):
        if info.pid:
            program_trees.append(tree(table, name, info.pid, exclude=pane_pids))
    program_trees.extend(own_processes(settings, table))
    left = left_behind(settings, table)
    total = sum(s.rss_bytes for s in sessions.values())
    total += sum(t.rss_bytes for t in program_trees) + sum(t.rss_bytes for t in left)
    return Report(list(sessions.values()), program_trees, left, total, notes)


def supervisord_and_reaper(settings: Settings, table: dict[int, Proc]) -> tuple[int, int]:
    """supervisord's pid and services.reaper's (its parent), 0 for either that is not running."""
    try:
        supervisord = int((settings.files.supervisord_pid).read_text().strip())
    except (OSError, ValueError):
        return 0, 0
    if supervisord not in table:
        return 0, 0
    reaper = table[supervisord].ppid
    try:
        is_reaper = b"services.reaper" in Path(f"/proc/{reaper}/cmdline").read_bytes()
    except OSError:
        is_reaper = False
    return supervisord, reaper if is_reaper else 0


def own_processes(settings: Settings, table: dict[int, Proc]) -> list[Tree]:
    """supervisord and services.reaper themselves, without what runs below them."""
    supervisord, reaper = supervisord_and_reaper(settings, table)
    found = []
    for label, pid in (("supervisord", supervisord), ("scripts/run (services.reaper)", reaper)):
        if pid:
            found.append(tree(table, label, pid, exclude=set(proctable.descendants(table, pid))))
    return found


def left_behind(settings: Settings, table: dict[int, Proc]) -> list[Tree]:
    """The trees services.reaper adopted: its children other than supervisord."""
    supervisord, reaper = supervisord_and_reaper(settings, table)
    if not reaper:
        return []
    roots = [p.pid for p in table.values() if p.ppid == reaper and p.pid != supervisord]
    return [tree(table, table[pid].name, pid) for pid in sorted(roots)]


def render(report: Report) -> str:
    lines: list[str] = []
    for session in report.sessions:
        lines.append(f"session {session.name}: {mib(session.rss_bytes)}")
        lines.extend(f"  {pane.label}: {format_tree(pane)}" for pane in session.panes)
    if report.programs:
        lines.append("app programs:")
        lines.extend(f"  {t.label}: {format_tree(t)}" for t in report.programs)
    if report.left_behind:
        lines.append("left behind (their parent ended; stopped with the app):")
        lines.extend(f"  {t.label}: {format_tree(t)}" for t in report.left_behind)
    lines.append(f"total: {mib(report.total_rss_bytes)}")
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)


def format_tree(t: Tree) -> str:
    return f"pid {t.pid}, {t.processes} process(es), {mib(t.rss_bytes)} ({', '.join(t.top)})"


def to_json(report: Report) -> dict[str, Any]:
    return asdict(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/ctl procs", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"procs: {exc}", file=sys.stderr)
        return 2
    report = build_report(settings)
    print(json.dumps(to_json(report), indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
