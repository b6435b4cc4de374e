"""What one sync must do: pure functions from (what the workspace holds, what HEAD holds) to ops.

The workspace should hold every regular file of HEAD's tree up to 10 MB, byte for byte. Symlinks
and submodules have no file content to mirror (the bundle keeps them); bigger files are skipped and
named in the status; names that are not UTF-8 cannot exist in the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.sync.gitrepo import Entry, is_utf8, leaf_dirs, parents

MAX_FILE_BYTES = 10 * 1024 * 1024  # the workspace import limit (and the Apps file limit)


@dataclass
class Desired:
    files: dict[str, str] = field(default_factory=dict)  # path -> blob id
    skipped_large: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # path -> why

    @property
    def dirs(self) -> set[str]:
        return {d for path in self.files for d in parents(path)}


def desired(tree: dict[str, Entry], max_bytes: int = MAX_FILE_BYTES) -> Desired:
    want = Desired()
    for path, entry in tree.items():
        if not entry.regular:
            continue
        if not is_utf8(path):
            want.rejected[path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")] = (
                "the name is not valid UTF-8"
            )
        elif entry.size > max_bytes:
            want.skipped_large.append(path)
        else:
            want.files[path] = entry.sha
    return want


@dataclass
class Plan:
    deletes: list[str] = field(default_factory=list)  # files, then
    rmdirs: list[str] = field(default_factory=list)  # folders left empty, deepest first, then
    rmtrees: list[str] = field(default_factory=list)  # folders with nothing wanted (full sync), then
    mkdirs: list[str] = field(default_factory=list)  # leaf folders new in this tree, then
    uploads: list[tuple[str, str]] = field(default_factory=list)  # (path, blob id)
    full: bool = False

    @property
    def empty(self) -> bool:
        return not (self.deletes or self.rmdirs or self.rmtrees or self.mkdirs or self.uploads)


def _apply_progress(remote: dict[str, str | None], progress: dict[str, str]) -> None:
    for path, blob in progress.items():
        if blob:
            remote[path] = blob
        else:
            remote.pop(path, None)


def incremental(
    old_tree: dict[str, Entry], old_skipped: set[str], want: Desired, progress: dict[str, str]
) -> Plan:
    """From the synced commit's tree (plus uploads/deletes already done since) to `want`."""
    remote: dict[str, str | None] = {
        p: e.sha for p, e in old_tree.items() if e.regular and is_utf8(p) and p not in old_skipped
    }
    old_dirs = {d for p in remote for d in parents(p)}
    _apply_progress(remote, progress)
    plan = Plan()
    plan.deletes = sorted(p for p in remote if p not in want.files)
    gone_dirs = old_dirs - want.dirs
    plan.rmdirs = sorted(gone_dirs, key=lambda d: (-d.count("/"), d))
    plan.uploads = sorted((p, b) for p, b in want.files.items() if remote.get(p) != b)
    new_dirs = {d for p, _ in plan.uploads for d in parents(p)} - old_dirs
    plan.mkdirs = leaf_dirs(new_dirs)
    return plan


def full(listed_files: set[str], listed_dirs: set[str], want: Desired, progress: dict[str, str]) -> Plan:
    """From whatever the workspace folder holds (listed, contents unknown) to `want`: used for a
    first sync, or when the journal cannot say what is there."""
    plan = Plan(full=True)
    want_dirs = want.dirs
    # Folders nothing wanted lives in go in one recursive delete each (topmost only).
    doomed = {d for d in listed_dirs if d not in want_dirs}
    plan.rmtrees = sorted(d for d in doomed if not any(p in doomed for p in parents(d + "/x") if p != d))
    under_doomed = {f for f in listed_files if any(p in doomed for p in parents(f))}
    plan.deletes = sorted(f for f in listed_files if f not in want.files and f not in under_doomed)
    remote: dict[str, str | None] = {f: None for f in listed_files if f not in under_doomed}
    _apply_progress(remote, {p: b for p, b in progress.items() if p in remote or not b})
    plan.uploads = sorted((p, b) for p, b in want.files.items() if remote.get(p) != b)
    plan.mkdirs = leaf_dirs(want_dirs - listed_dirs) if want_dirs - listed_dirs else []
    return plan
