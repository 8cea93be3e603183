"""The etcd store reads gets that arrive together in one transaction (issue 14: pod GET on etcd).

Each get stays a linearizable read that starts after its caller asked: a get issued after a
write has returned sees that write even while other reads are in flight, and every caller
gets its own key's value."""
from __future__ import annotations

import asyncio

import pytest

from kubelite.store.etcd import EtcdStore, Unavailable
from tests.test_store import Backend


@pytest.fixture
async def etcd(tmp_path):
    b = Backend("etcd", tmp_path)
    try:
        yield b
    finally:
        await b.close()


async def test_concurrent_gets_each_answer_their_own_key(etcd: Backend, monkeypatch):
    s = await etcd.open()
    assert isinstance(s, EtcdStore)
    for i in range(0, 200, 2):
        await s.create(f"/registry/core/configmaps/ns/cm-{i}", f"v{i}".encode())
    reads: list[int] = []
    read_keys = s._read_keys

    async def counted(keys: list[bytes]):
        reads.append(len(keys))
        return await read_keys(keys)
    monkeypatch.setattr(s, "_read_keys", counted)
    got = await asyncio.gather(*(s.get(f"/registry/core/configmaps/ns/cm-{i}") for i in range(200)))
    for i, kv in enumerate(got):
        if i % 2:
            assert kv is None
        else:
            assert kv is not None and kv.key == f"/registry/core/configmaps/ns/cm-{i}" and kv.value == f"v{i}".encode()
    assert sum(reads) == 200 and len(reads) < 200  # read together, none twice


async def test_a_get_after_a_write_sees_it_while_other_reads_are_in_flight(etcd: Backend):
    s = await etcd.open()
    other = await etcd.open()  # another server writing to the same etcd
    key = "/registry/core/configmaps/ns/counter"
    await other.create(key, b"0")
    for n in range(1, 30):
        busy = [asyncio.ensure_future(s.get(f"/registry/core/configmaps/ns/x-{j}")) for j in range(5)]
        cur = await other.get(key)
        assert cur is not None
        await other.update(key, str(n).encode(), cur.mod_revision)
        seen = await s.get(key)
        assert seen is not None and seen.value == str(n).encode()
        await asyncio.gather(*busy)


async def test_gets_waiting_when_the_store_closes_fail(etcd: Backend):
    s = await etcd.open()
    pending = [asyncio.ensure_future(s.get(f"/registry/core/configmaps/ns/y-{j}")) for j in range(10)]
    await asyncio.sleep(0)  # queued, not yet answered
    await s.close()
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(r is None or isinstance(r, Unavailable) for r in results)
    assert any(isinstance(r, Unavailable) for r in results)
