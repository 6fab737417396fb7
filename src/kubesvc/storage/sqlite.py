"""The default store: one SQLite file, WAL, every acknowledged write synced to disk.

Two tables: `kv` holds the current objects, `log` every write (the event log a watch resumes
from). Both change in one transaction, and the global revision is the log's last row id.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from kubesvc.storage.base import (
    Compacted,
    Event,
    Events,
    KeyExists,
    KeyNotFound,
    Obj,
    RevisionConflict,
    Store,
    set_revision,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, rev INTEGER NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# How many log entries a watch can resume across; older revisions get 410 Gone.
RETAINED_EVENTS = 20_000


def _dumps(value: Obj) -> str:
    return json.dumps(value, separators=(",", ":"))


def _prefix_range(prefix: str) -> tuple[str, str]:
    # Keys are compared as text; every key under prefix sorts below prefix + U+10FFFF.
    return prefix, prefix + "\U0010ffff"


class SQLiteStore(Store):
    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a write is on disk before it is acknowledged, so a crash loses nothing.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT COALESCE(MAX(rev), 0) FROM log").fetchone()
        self._rev: int = row[0]
        got = self._db.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()
        self._compacted: int = got[0] if got else 0

    @property
    def revision(self) -> int:
        return self._rev

    async def get(self, key: str) -> Obj | None:
        row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    async def list(self, prefix: str) -> tuple[list[Obj], int]:
        lo, hi = _prefix_range(prefix)
        rows = self._db.execute(
            "SELECT value FROM kv WHERE key >= ? AND key < ? ORDER BY key", (lo, hi)).fetchall()
        return [json.loads(r[0]) for r in rows], self._rev

    def _write(self, kind: str, key: str, value: Obj, check: Any) -> Obj:
        """Run one write transaction: check the current row, log the event, apply it."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT rev, value FROM kv WHERE key=?", (key,)).fetchone()
            check(row)
            rev = self._rev + 1
            stored = set_revision(value, rev) if kind != "DELETED" else set_revision(
                json.loads(row[1]), rev)
            text = _dumps(stored)
            db.execute("INSERT INTO log (rev, type, key, value) VALUES (?, ?, ?, ?)",
                       (rev, kind, key, text))
            if kind == "DELETED":
                db.execute("DELETE FROM kv WHERE key=?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO kv (key, rev, value) VALUES (?, ?, ?)",
                           (key, rev, text))
            if rev % 1000 == 0:
                self._compact(rev)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._rev = rev
        prev = json.loads(row[1]) if kind == "MODIFIED" else None
        self._notify(Event(kind, key, stored, rev, prev))
        return stored

    def _compact(self, rev: int) -> None:
        floor = rev - RETAINED_EVENTS
        if floor > self._compacted:
            self._db.execute("DELETE FROM log WHERE rev <= ?", (floor,))
            self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('compacted', ?)",
                             (floor,))
            self._compacted = floor

    async def create(self, key: str, value: Obj) -> Obj:
        def check(row: Any) -> None:
            if row is not None:
                raise KeyExists(key)
        return self._write("ADDED", key, value, check)

    async def update(self, key: str, value: Obj, expected_rev: int | None = None) -> Obj:
        def check(row: Any) -> None:
            if row is None:
                raise KeyNotFound(key)
            if expected_rev is not None and row[0] != expected_rev:
                raise RevisionConflict(key)
        return self._write("MODIFIED", key, value, check)

    async def delete(self, key: str, expected_rev: int | None = None) -> Obj:
        def check(row: Any) -> None:
            if row is None:
                raise KeyNotFound(key)
            if expected_rev is not None and row[0] != expected_rev:
                raise RevisionConflict(key)
        return self._write("DELETED", key, {}, check)

    def _history(self, prefix: str, after: int) -> Events:
        if after < self._compacted:
            raise Compacted(after, self._compacted + 1)
        lo, hi = _prefix_range(prefix)
        rows = self._db.execute(
            "SELECT rev, type, key, value FROM log WHERE rev > ? AND key >= ? AND key < ? "
            "ORDER BY rev", (after, lo, hi)).fetchall()
        return [Event(t, k, json.loads(v), r) for r, t, k, v in rows]

    async def close(self) -> None:
        self.close_watches()
        self._db.close()
