"""MVCC store on SQLite, shaped like kine: one append-only table whose row id is the
global revision.

Why this shape:
- a row per write (``deleted`` marks tombstones) gives list-at-revision and watch-from-
  revision for free, and ``AUTOINCREMENT`` keeps revisions strictly increasing even after
  compaction removes rows;
- WAL journaling: a transaction is durable once ``commit`` returns, so a ``kill -9`` at
  any moment loses no acknowledged write (an OS crash may lose the last few, as with
  ``synchronous=NORMAL`` everywhere);
- the live state and a window of recent events are kept in memory (the API server's
  watch cache), so reads and watches never touch the disk; the table is only read at
  start-up;
- every Secret is in these files, so the database, its WAL and shared-memory files are
  kept 0600 whatever modes they had before (SQLite gives the -wal and -shm files the
  mode of the database file when it creates them); a directory made for them is 0700.
"""
from __future__ import annotations

import bisect
import builtins
import logging
import os
import sqlite3
from collections import deque

from kubelite.store.base import KV, Compacted, Event, KeyExists, KeyNotFound, RevisionMismatch, Store, Watch
from kubelite.store.watchqueue import QueuedWatch

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB
);
CREATE INDEX IF NOT EXISTS kine_name_id ON kine (name, id);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""

DIR_MODE = 0o700
FILE_MODE = 0o600
SIDE_FILES = ("", "-wal", "-shm", "-journal")  # the database and what SQLite keeps beside it

HISTORY_EVENTS = 100_000   # watch window kept in memory


class SqliteStore(Store):
    """The embedded store: one SQLite file in the data directory."""

    def __init__(self, path: str):
        self.path = path
        _private_files(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._live: dict[str, KV] = {}
        # The live keys in order: a prefix list is a bisect and a slice, not a scan of every
        # key (admission lists the namespace's quotas and limit ranges on every create).
        self._keys: list[str] = []
        self._history: deque[Event] = deque(maxlen=HISTORY_EVENTS)
        self._watchers: set[QueuedWatch] = set()
        self._rev = 0
        self._compact_rev = 0
        self._load()
        _private_files(path)  # -wal and -shm exist now

    # -- start-up ---------------------------------------------------------------------
    def _load(self) -> None:
        cur = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM kine")
        self._rev = cur.fetchone()[0]
        row = self._db.execute("SELECT v FROM meta WHERE k='compact_rev'").fetchone()
        self._compact_rev = row[0] if row else 0
        q = ("SELECT k.id, k.name, k.deleted, k.create_revision, k.value FROM kine k "
             "JOIN (SELECT name, MAX(id) AS id FROM kine GROUP BY name) m ON k.id = m.id")
        for rid, name, deleted, crev, value in self._db.execute(q):
            if not deleted:
                self._live[name] = KV(name, bytes(value), rid, crev)
        self._keys = sorted(self._live)
        # Refill the watch window from the log so clients can resume right after a restart.
        # Each event needs its previous value too (MODIFIED vs ADDED, selector exits);
        # compaction always keeps the row an event after the compacted revision points at.
        first = max(self._compact_rev, self._rev - HISTORY_EVENTS) + 1
        rows = self._db.execute(
            "SELECT k.id, k.name, k.deleted, k.create_revision, k.value, p.id, p.create_revision, p.value "
            "FROM kine k LEFT JOIN kine p ON p.id = k.prev_revision AND k.prev_revision > 0 "
            "WHERE k.id >= ? ORDER BY k.id", (first,))
        for rid, name, deleted, crev, value, pid, pcrev, pvalue in rows:
            kv = KV(name, bytes(value or b""), rid, crev)
            prev = KV(name, bytes(pvalue or b""), pid, pcrev) if pid is not None else None
            self._history.append(Event("DELETE" if deleted else "PUT", kv, prev))
        self._hist_start = first if self._history else self._rev + 1

    # -- reads ------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        return self._rev

    async def get(self, key: str) -> KV | None:
        return self._live.get(key)

    def _under(self, prefix: str) -> builtins.list[str]:
        """The live keys that start with prefix, in order."""
        keys = self._keys
        lo = bisect.bisect_left(keys, prefix)
        hi = lo
        # Keys sharing a prefix are contiguous in sorted order; stop at the first that differs.
        n = len(keys)
        while hi < n and keys[hi].startswith(prefix):
            hi += 1
        return keys[lo:hi]

    async def list(self, prefix: str) -> tuple[list[KV], int]:
        live = self._live
        return [live[k] for k in self._under(prefix)], self._rev

    async def list_at(self, prefix: str, revision: int) -> builtins.list[KV]:
        """The keys under prefix as of ``revision``: the live state with the newer events
        of the watch window undone, newest first (a paginated list stays one snapshot)."""
        if revision >= self._rev:
            return (await self.list(prefix))[0]
        if revision < self._compact_rev or revision < self._hist_start - 1:
            raise Compacted(revision, max(self._hist_start - 1, self._compact_rev))
        state = {k: self._live[k] for k in self._under(prefix)}
        for ev in reversed(self._history):
            if ev.revision <= revision:
                break
            if not ev.kv.key.startswith(prefix):
                continue
            if ev.prev is None:
                state.pop(ev.kv.key, None)  # created after the snapshot
            else:
                state[ev.kv.key] = ev.prev
        return sorted(state.values(), key=lambda kv: kv.key)

    # -- writes -----------------------------------------------------------------------
    def _append(self, name: str, deleted: bool, crev: int, prev: int, value: bytes) -> int:
        cur = self._db.execute(
            "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, value) "
            "VALUES (?, ?, ?, ?, ?, ?)", (name, 0 if prev else 1, 1 if deleted else 0, crev, prev, value))
        rid = cur.lastrowid
        assert rid is not None and rid > self._rev
        self._rev = rid
        return rid

    def _publish(self, ev: Event) -> None:
        if not self._history:
            self._hist_start = ev.revision
        self._history.append(ev)
        if len(self._history) == self._history.maxlen:
            self._hist_start = self._history[0].revision
        for w in list(self._watchers):
            if ev.kv.key.startswith(w.prefix):
                w.push(ev)

    async def create(self, key: str, value: bytes) -> KV:
        if key in self._live:
            raise KeyExists(key)
        # The row's create_revision is its own id, known only after the insert: both
        # statements commit together, or a crash between them would leave a row that
        # reads as created at revision 0 after a restart.
        before = self._rev
        self._db.execute("BEGIN")
        try:
            rid = self._append(key, False, 0, 0, value)
            self._db.execute("UPDATE kine SET create_revision = ? WHERE id = ?", (rid, rid))
            self._db.execute("COMMIT")
        except BaseException:
            self._rev = before
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        kv = KV(key, value, rid, rid)
        self._live[key] = kv
        bisect.insort(self._keys, key)
        self._publish(Event("PUT", kv))
        return kv

    async def update(self, key: str, value: bytes, expected_revision: int | None) -> KV:
        cur = self._live.get(key)
        if cur is None:
            raise KeyNotFound(key)
        if expected_revision is not None and cur.mod_revision != expected_revision:
            raise RevisionMismatch(cur)
        rid = self._append(key, False, cur.create_revision, cur.mod_revision, value)
        kv = KV(key, value, rid, cur.create_revision)
        self._live[key] = kv
        self._publish(Event("PUT", kv, cur))
        return kv

    async def delete(self, key: str, expected_revision: int | None) -> KV:
        cur = self._live.get(key)
        if cur is None:
            raise KeyNotFound(key)
        if expected_revision is not None and cur.mod_revision != expected_revision:
            raise RevisionMismatch(cur)
        rid = self._append(key, True, cur.create_revision, cur.mod_revision, cur.value)
        del self._live[key]
        i = bisect.bisect_left(self._keys, key)
        del self._keys[i]
        kv = KV(key, cur.value, rid, cur.create_revision)
        self._publish(Event("DELETE", kv, cur))
        return kv

    # -- watch and compaction -----------------------------------------------------------
    def watch(self, prefix: str, from_revision: int) -> Watch:
        if from_revision < self._hist_start - 1 or from_revision < self._compact_rev:
            raise Compacted(from_revision, max(self._hist_start - 1, self._compact_rev))
        w = QueuedWatch(prefix, self._watchers.discard)
        if from_revision < self._rev:
            for ev in self._history:
                if ev.revision > from_revision and ev.kv.key.startswith(prefix):
                    w.push(ev)
        self._watchers.add(w)
        return w

    async def compact(self, revision: int) -> None:
        revision = min(revision, self._rev)
        if revision <= self._compact_rev:
            return
        # Keep the newest row of every live key; drop superseded rows and old tombstones.
        self._db.execute("BEGIN")
        self._db.execute(
            "DELETE FROM kine WHERE id <= ? AND id NOT IN "
            "(SELECT MAX(id) FROM kine WHERE id <= ? GROUP BY name)", (revision, revision))
        self._db.execute("DELETE FROM kine WHERE id <= ? AND deleted = 1", (revision,))
        self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('compact_rev', ?)", (revision,))
        self._db.execute("COMMIT")
        self._compact_rev = revision
        while self._history and self._history[0].revision <= revision:
            self._history.popleft()
        self._hist_start = self._history[0].revision if self._history else self._rev + 1

    # -- test fixtures: back to a saved state ---------------------------------------------
    def snapshot(self) -> dict[str, KV]:
        """The live keys now, for a later ``restore`` (kept in memory only)."""
        return dict(self._live)

    async def restore(self, saved: dict[str, KV]) -> int:
        """Make the live state ``saved`` again in one transaction; returns the new revision.

        Revisions only grow: every key that differs gets a new row (a tombstone, or the
        saved value as a create or update), so no resourceVersion is ever handed out
        twice.  History up to the new revision is then compacted and every open watch
        closed, so clients re-watch, get 410 Expired and re-list the restored state.
        """
        before = self._rev
        live: dict[str, KV] = {}
        self._db.execute("BEGIN")
        try:
            for key, cur in self._live.items():
                old = saved.get(key)
                if old is None:
                    self._append(key, True, cur.create_revision, cur.mod_revision, cur.value)
                elif old.mod_revision == cur.mod_revision:
                    live[key] = cur
                else:
                    rid = self._append(key, False, cur.create_revision, cur.mod_revision, old.value)
                    live[key] = KV(key, old.value, rid, cur.create_revision)
            for key, old in saved.items():
                if key not in self._live:
                    rid = self._append(key, False, 0, 0, old.value)
                    self._db.execute("UPDATE kine SET create_revision = ? WHERE id = ?", (rid, rid))
                    live[key] = KV(key, old.value, rid, rid)
            self._db.execute("DELETE FROM kine WHERE id NOT IN (SELECT MAX(id) FROM kine GROUP BY name)")
            self._db.execute("DELETE FROM kine WHERE deleted = 1")
            self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('compact_rev', ?)", (self._rev,))
            self._db.execute("COMMIT")
        except BaseException:
            self._rev = before
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._live = live
        self._keys = sorted(live)
        self._history.clear()
        self._compact_rev = self._rev
        self._hist_start = self._rev + 1
        for w in list(self._watchers):
            w.close()
        return self._rev

    async def close(self) -> None:
        for w in list(self._watchers):
            w.close()
        self._db.close()


def _private_files(path: str) -> None:
    """The database and its side files 0600 (the database created so, and its directory 0700, if missing)."""
    # The directory's mode is the data directory owner's business (server.py tightens its
    # own); this path may well sit in a shared directory.
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=DIR_MODE, exist_ok=True)
    # Create the database empty with the right mode before SQLite opens it, so it never
    # exists world-readable, not even for a moment.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for suffix in SIDE_FILES:
        try:
            os.chmod(path + suffix, FILE_MODE)
        except FileNotFoundError:
            pass
