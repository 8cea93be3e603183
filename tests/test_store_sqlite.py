"""The embedded SQLite store only: durability through kill -9, rollback of a failed create, file
modes (the specs every backend meets are in test_store.py)."""
import asyncio
import os
import signal
import subprocess
import sys

import pytest

from kubelite.store.sqlite import SqliteStore


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
