"""SqliteStore.snapshot()/restore(): the test fixture's reset at the store level."""
from __future__ import annotations

from pathlib import Path

import pytest

from kubelite.store.base import Compacted
from kubelite.store.sqlite import SqliteStore


async def test_restore_brings_back_the_snapshot_with_new_revisions(tmp_path: Path) -> None:
    s = SqliteStore(str(tmp_path / "db"))
    kept = await s.create("/r/a/kept", b"kept")
    changed = await s.create("/r/a/changed", b"v1")
    deleted = await s.create("/r/a/deleted", b"gone")
    saved = s.snapshot()
    await s.update("/r/a/changed", b"v2", changed.mod_revision)
    await s.delete("/r/a/deleted", deleted.mod_revision)
    await s.create("/r/a/new", b"new")
    before = s.revision

    rev = await s.restore(saved)

    assert rev == s.revision > before
    items, _ = await s.list("/r/a/")
    assert {kv.key: kv.value for kv in items} == {"/r/a/kept": b"kept", "/r/a/changed": b"v1", "/r/a/deleted": b"gone"}
    assert (await s.get("/r/a/kept")) == kept  # untouched: same revisions
    assert (await s.get("/r/a/changed")).mod_revision > before
    recreated = await s.get("/r/a/deleted")
    assert recreated.mod_revision == recreated.create_revision > before
    # Writes go on after the restore with ever-growing revisions.
    assert (await s.create("/r/a/later", b"x")).mod_revision > rev
    await s.close()
    # What the restore wrote is on disk: a restart finds the same state.
    again = SqliteStore(str(tmp_path / "db"))
    items, _ = await again.list("/r/a/")
    assert sorted(kv.key for kv in items) == ["/r/a/changed", "/r/a/deleted", "/r/a/kept", "/r/a/later"]
    await again.close()


async def test_restore_ends_watches_and_expires_older_revisions(tmp_path: Path) -> None:
    s = SqliteStore(str(tmp_path / "db"))
    await s.create("/r/a/one", b"1")
    saved = s.snapshot()
    old = s.revision
    w = s.watch("/r/a/", old)
    await s.create("/r/a/two", b"2")

    await s.restore(saved)

    seen = [ev.kv.key async for ev in w]  # ends: the watch was closed
    assert seen == ["/r/a/two"]  # what happened before the restore, not the restore itself
    with pytest.raises(Compacted):
        s.watch("/r/a/", old)
    with pytest.raises(Compacted):
        await s.list_at("/r/a/", old)
    w2 = s.watch("/r/a/", s.revision)  # from now on, watches work as before
    await s.create("/r/a/three", b"3")
    ev = await anext(aiter(w2))
    assert ev.kv.key == "/r/a/three"
    w2.close()
    await s.close()
