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
