"""The embedded MVCC store: revisions, compare-and-swap, watch windows, compaction, restarts."""
import asyncio
import os
import signal
import subprocess
import sys

import pytest

from kubelite.store.base import Compacted, KeyExists, KeyNotFound, RevisionMismatch
from kubelite.store.sqlite import SqliteStore


async def test_revisions_are_global_and_increase(tmp_path):
    s = SqliteStore(str(tmp_path / "db"))
    a = await s.create("/r/pods/a", b"1")
    b = await s.create("/r/deploy/b", b"2")
    a2 = await s.update("/r/pods/a", b"3", a.mod_revision)
    assert a.mod_revision < b.mod_revision < a2.mod_revision == s.revision
    assert a2.create_revision == a.mod_revision
    items, rev = await s.list("/r/pods/")
    assert [kv.value for kv in items] == [b"3"] and rev == s.revision


async def test_compare_and_swap(tmp_path):
    s = SqliteStore(str(tmp_path / "db"))
    a = await s.create("/k", b"1")
    with pytest.raises(KeyExists):
        await s.create("/k", b"x")
    await s.update("/k", b"2", a.mod_revision)
    with pytest.raises(RevisionMismatch):
        await s.update("/k", b"3", a.mod_revision)
    with pytest.raises(RevisionMismatch):
        await s.delete("/k", a.mod_revision)
    assert (await s.get("/k")).value == b"2"
    with pytest.raises(KeyNotFound):
        await s.update("/nope", b"", None)


async def test_watch_from_revision_replays_then_follows(tmp_path):
    s = SqliteStore(str(tmp_path / "db"))
    a = await s.create("/p/a", b"1")
    await s.update("/p/a", b"2", None)
    await s.create("/q/x", b"other prefix")
    w = s.watch("/p/", a.mod_revision)
    await s.delete("/p/a", None)
    got = []
    async for ev in w:
        got.append((ev.type, ev.kv.value))
        if len(got) == 2:
            break
    w.close()
    assert got == [("PUT", b"2"), ("DELETE", b"2")]


async def test_compacted_revision_is_refused(tmp_path):
    s = SqliteStore(str(tmp_path / "db"))
    a = await s.create("/p/a", b"1")
    for i in range(5):
        await s.update("/p/a", str(i).encode(), None)
    await s.compact(s.revision - 1)
    with pytest.raises(Compacted):
        s.watch("/p/", a.mod_revision)
    s.watch("/p/", s.revision).close()  # the current revision is always watchable
    assert (await s.get("/p/a")).value == b"4"


async def test_restart_keeps_objects_and_revision(tmp_path):
    path = str(tmp_path / "db")
    s = SqliteStore(path)
    await s.create("/p/a", b"1")
    b = await s.create("/p/b", b"2")
    await s.delete("/p/a", None)
    rev = s.revision
    await s.close()
    s2 = SqliteStore(path)
    assert s2.revision == rev
    assert await s2.get("/p/a") is None
    assert (await s2.get("/p/b")).mod_revision == b.mod_revision
    # The watch window survives a restart: a client can resume from an older revision.
    w = s2.watch("/p/", b.mod_revision)
    ev = await asyncio.wait_for(w.__aiter__().__anext__(), 5)
    assert ev.type == "DELETE" and ev.kv.key == "/p/a"
    nxt = await s2.create("/p/c", b"3")
    assert nxt.mod_revision > rev


def test_kill_9_loses_no_acknowledged_write(tmp_path):
    path = str(tmp_path / "db")
    code = f"""
import asyncio, sys
from kubelite.store.sqlite import SqliteStore
async def main():
    s = SqliteStore({path!r})
    i = 0
    while True:
        await s.create(f"/k/{{i:06d}}", b"v")
        print(i, flush=True)   # acknowledged only after the commit returned
        i += 1
asyncio.run(main())
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    acked = -1
    for line in p.stdout:
        acked = int(line)
        if acked >= 300:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    s = SqliteStore(path)
    items, _ = asyncio.run(s.list("/k/"))
    assert len(items) >= acked + 1


async def test_failing_create_leaves_nothing_behind(tmp_path):
    """A create whose second statement fails is rolled back whole: no row, no key, no revision."""
    import sqlite3
    path = str(tmp_path / "db")
    s = SqliteStore(path)
    await s.create("/k/before", b"0")
    rev = s.revision
    # Make the create's UPDATE (create_revision = own id) fail inside the store's transaction.
    s._db.execute("CREATE TRIGGER boom BEFORE UPDATE ON kine BEGIN SELECT RAISE(ABORT, 'injected'); END")
    with pytest.raises(sqlite3.IntegrityError):
        await s.create("/k/lost", b"1")
    assert await s.get("/k/lost") is None
    assert s.revision == rev
    rows = s._db.execute("SELECT COUNT(*) FROM kine WHERE name = '/k/lost'").fetchone()[0]
    assert rows == 0
    s._db.execute("DROP TRIGGER boom")
    # The store goes on: the next create takes the next revision and survives a restart.
    after = await s.create("/k/after", b"2")
    assert after.mod_revision == after.create_revision > rev
    await s.close()
    s2 = SqliteStore(path)
    assert await s2.get("/k/lost") is None
    kv = await s2.get("/k/after")
    assert kv is not None and kv.create_revision == after.mod_revision
    assert s2.revision == after.mod_revision
    await s2.close()


async def test_store_files_are_private_whatever_their_modes_were(tmp_path):
    """A database, WAL and shm left 0644 are 0600 once the store opens them; a new one is born 0600."""
    d = tmp_path / "db"
    d.mkdir(mode=0o755)
    path = str(d / "state.db")
    s = SqliteStore(path)
    await s.create("/k", b"secret")
    await s.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.chmod(path + suffix, 0o644)
    s = SqliteStore(path)
    await s.create("/k2", b"secret")
    try:
        modes = {suffix: os.stat(path + suffix).st_mode & 0o777 for suffix in ("", "-wal", "-shm")}
        assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        await s.close()
    fresh = str(tmp_path / "new" / "state.db")
    s = SqliteStore(fresh)
    try:
        assert os.stat(fresh).st_mode & 0o777 == 0o600
        assert os.stat(os.path.dirname(fresh)).st_mode & 0o777 == 0o700
    finally:
        await s.close()
