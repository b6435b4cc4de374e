"""The durable journal: what the workspace holds for each repo, in SQLite (WAL) in the state dir.

Invariant: `synced` is a commit whose tree the workspace holds in full, and every `progress` row is
an upload (blob id) or delete ('') already applied on top of it. Both change only after the workspace
said yes, so a watcher killed at any moment resumes with exactly the work that is missing. Only the
watcher's coordinating thread writes here.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS repos (
    name TEXT PRIMARY KEY,
    synced TEXT,                 -- last commit whose whole tree the workspace holds
    synced_at REAL,
    target TEXT,                 -- newest HEAD seen: the pending work
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_try REAL NOT NULL DEFAULT 0,
    skipped_large TEXT NOT NULL DEFAULT '[]',
    rejected TEXT NOT NULL DEFAULT '{}',
    manifest TEXT,               -- commit the workspace's manifest vouches for (NULL: none there)
    bundle_due REAL,             -- refresh bundle + manifest once idle until then
    bundle_refs TEXT,            -- refs digest of the bundle last uploaded
    bundle_error TEXT,           -- why the workspace has no (fresh) bundle, if it has none
    removed_at REAL,             -- the local folder disappeared (the workspace copy is kept)
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS progress (
    repo TEXT NOT NULL,
    path TEXT NOT NULL,
    blob TEXT NOT NULL,          -- blob id uploaded, or '' for deleted
    PRIMARY KEY (repo, path)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class RepoRecord:
    name: str
    synced: str | None = None
    synced_at: float | None = None
    target: str | None = None
    attempts: int = 0
    last_error: str | None = None
    next_try: float = 0.0
    skipped_large: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    manifest: str | None = None
    bundle_due: float | None = None
    bundle_refs: str | None = None
    bundle_error: str | None = None
    removed_at: float | None = None
    note: str = ""


_COLUMNS = (
    "name, synced, synced_at, target, attempts, last_error, next_try, skipped_large, rejected, "
    "manifest, bundle_due, bundle_refs, bundle_error, removed_at, note"
)


def _record(row: tuple[object, ...]) -> RepoRecord:
    (name, synced, synced_at, target, attempts, last_error, next_try, large, rejected, manifest) = row[:10]
    bundle_due, bundle_refs, bundle_error, removed_at, note = row[10:]
    return RepoRecord(
        name=str(name),
        synced=synced if isinstance(synced, str) else None,
        synced_at=float(synced_at) if isinstance(synced_at, int | float) else None,
        target=target if isinstance(target, str) else None,
        attempts=int(attempts) if isinstance(attempts, int) else 0,
        last_error=last_error if isinstance(last_error, str) else None,
        next_try=float(next_try) if isinstance(next_try, int | float) else 0.0,
        skipped_large=list(json.loads(str(large))),
        rejected=dict(json.loads(str(rejected))),
        manifest=manifest if isinstance(manifest, str) else None,
        bundle_due=float(bundle_due) if isinstance(bundle_due, int | float) else None,
        bundle_refs=bundle_refs if isinstance(bundle_refs, str) else None,
        bundle_error=bundle_error if isinstance(bundle_error, str) else None,
        removed_at=float(removed_at) if isinstance(removed_at, int | float) else None,
        note=str(note or ""),
    )


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Autocommit: each write below is its own transaction unless wrapped in `with self._db`.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode loses at most the last commits on power loss, never consistency; a lost
        # progress row only means one idempotent upload is done again.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    # -- meta -------------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def use_remote(self, root: str) -> bool:
        """Pin the journal to one workspace folder; a different one (new owner) starts over."""
        current = self.meta("remote_root")
        if current == root:
            return False
        self._db.execute("BEGIN")
        try:
            if current is not None:
                self._db.execute("DELETE FROM progress")
                self._db.execute(
                    "UPDATE repos SET synced = NULL, synced_at = NULL, manifest = NULL, "
                    "bundle_refs = NULL, attempts = 0, last_error = NULL, next_try = 0"
                )
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('remote_root', ?)", (root,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return current is not None

    # -- repos ------------------------------------------------------------------------------------

    def get(self, name: str) -> RepoRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM repos WHERE name = ?", (name,)).fetchone()
        return _record(row) if row else None

    def all(self) -> list[RepoRecord]:
        return [_record(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM repos ORDER BY name")]

    def ensure(self, name: str) -> RepoRecord:
        self._db.execute("INSERT OR IGNORE INTO repos (name) VALUES (?)", (name,))
        record = self.get(name)
        assert record is not None
        return record

    def _set(self, name: str, **values: object) -> None:
        self.ensure(name)
        assignments = ", ".join(f"{k} = ?" for k in values)
        self._db.execute(f"UPDATE repos SET {assignments} WHERE name = ?", (*values.values(), name))

    def set_target(self, name: str, target: str | None) -> None:
        self._set(name, target=target)

    def set_removed(self, name: str, when: float | None) -> None:
        self._set(name, removed_at=when)

    def set_manifest(self, name: str, commit: str | None) -> None:
        self._set(name, manifest=commit)

    def fail(self, name: str, error: str, next_try: float) -> int:
        record = self.ensure(name)
        self._set(name, attempts=record.attempts + 1, last_error=error, next_try=next_try)
        return record.attempts + 1

    def succeed(
        self,
        name: str,
        commit: str,
        skipped_large: list[str],
        rejected: dict[str, str],
        bundle_due: float | None,
    ) -> None:
        """The workspace now holds `commit`'s tree: one transaction, so a kill leaves before or after."""
        self.ensure(name)
        self._db.execute("BEGIN")
        try:
            self._db.execute(
                "UPDATE repos SET synced = ?, synced_at = ?, attempts = 0, last_error = NULL, next_try = 0, "
                "skipped_large = ?, rejected = ?, bundle_due = ? WHERE name = ?",
                (
                    commit,
                    time.time(),
                    json.dumps(sorted(skipped_large)),
                    json.dumps(rejected, sort_keys=True),
                    bundle_due,
                    name,
                ),
            )
            self._db.execute("DELETE FROM progress WHERE repo = ?", (name,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def bundle_done(self, name: str, refs: str | None, manifest: str | None, problem: str | None) -> None:
        """Bundle (refs digest, or None if none was uploaded) and manifest are in the workspace."""
        self._set(name, bundle_due=None, bundle_refs=refs, manifest=manifest, bundle_error=problem)

    def schedule_bundle(self, name: str, when: float) -> None:
        self._set(name, bundle_due=when)

    def bundle_failed(self, name: str, error: str, retry_at: float) -> None:
        self._set(name, bundle_due=retry_at, bundle_error=error)

    def restored(
        self,
        name: str,
        synced: str | None,
        refs: str | None,
        manifest: str | None,
        note: str,
        bundle_due: float | None = None,
    ) -> None:
        self._set(
            name,
            synced=synced,
            synced_at=time.time() if synced else None,
            target=synced,
            bundle_refs=refs,
            bundle_due=bundle_due,
            manifest=manifest,
            note=note,
            removed_at=None,
        )

    # -- progress ---------------------------------------------------------------------------------

    def progress(self, name: str) -> dict[str, str]:
        rows = self._db.execute("SELECT path, blob FROM progress WHERE repo = ?", (name,))
        return {str(path): str(blob) for path, blob in rows}

    def unfinished(self) -> set[str]:
        """Repos with a sync cut short (progress recorded, not yet synced)."""
        return {str(r[0]) for r in self._db.execute("SELECT DISTINCT repo FROM progress")}

    def record(self, name: str, path: str, blob: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO progress (repo, path, blob) VALUES (?, ?, ?)", (name, path, blob)
        )
