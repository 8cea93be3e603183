"""Store conformance: the same specs over every backend (embedded SQLite and etcd v3).

A store is opened (and reopened, for restarts) through the ``backend`` fixture, so each
spec says what the store interface promises, whichever engine is under it.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubelite.api.resources import RESOURCES
from kubelite.store import etcd as etcd_store
from kubelite.store.base import Compacted, Event, KeyExists, KeyNotFound, RevisionMismatch, Store, Watch
from kubelite.store.etcd import EtcdStore, KeyLayout, parse_endpoints
from kubelite.store.sqlite import SqliteStore
from tests.etcdkit import Etcd, start_etcd


class Backend:
    """Opens stores of one kind on the same data (a file, or one etcd)."""

    def __init__(self, kind: str, tmp: Path):
        self.kind = kind
        self.tmp = tmp
        self.etcd: Etcd | None = start_etcd(tmp / "etcd") if kind == "etcd" else None
        self.opened: list[Store] = []

    async def open(self) -> Store:
        """A store on this backend's data."""
        s: Store
        if self.etcd is not None:
            layout = KeyLayout(r.store_prefix() for r in RESOURCES)
            s = await EtcdStore.open(parse_endpoints(self.etcd.endpoint), layout=layout)
        else:
            s = SqliteStore(str(self.tmp / "db"))
        self.opened.append(s)
        return s

    async def close(self) -> None:
        """Close every store opened, then stop etcd."""
        for s in self.opened:
            try:
                await s.close()
            except Exception:
                pass
        if self.etcd is not None:
            self.etcd.stop()


@pytest.fixture(params=["sqlite", "etcd"])
async def backend(request, tmp_path) -> AsyncIterator[Backend]:
    """Each spec once per backend."""
    b = Backend(request.param, tmp_path)
    try:
        yield b
    finally:
        await b.close()


async def next_events(w: Watch, n: int, timeout: float = 10.0) -> list[Event]:
    """The next ``n`` events of a watch (fails after ``timeout`` seconds without them)."""
    got: list[Event] = []

    async def take() -> None:
        async for ev in w:
            got.append(ev)
            if len(got) == n:
                return
    await asyncio.wait_for(take(), timeout)
    return got


async def test_revisions_are_global_and_increase(backend):
    s = await backend.open()
    a = await s.create("/r/pods/a", b"1")
    b = await s.create("/r/deploy/b", b"2")
    a2 = await s.update("/r/pods/a", b"3", a.mod_revision)
    assert a.mod_revision < b.mod_revision < a2.mod_revision == s.revision
    assert a2.create_revision == a.mod_revision
    items, rev = await s.list("/r/pods/")
    assert [kv.value for kv in items] == [b"3"] and rev == s.revision


async def test_compare_and_swap(backend):
    s = await backend.open()
    a = await s.create("/k", b"1")
    with pytest.raises(KeyExists):
        await s.create("/k", b"x")
    await s.update("/k", b"2", a.mod_revision)
    with pytest.raises(RevisionMismatch) as e:
        await s.update("/k", b"3", a.mod_revision)
    assert e.value.current is not None and e.value.current.value == b"2"
    with pytest.raises(RevisionMismatch):
        await s.delete("/k", a.mod_revision)
    assert (await s.get("/k")).value == b"2"
    with pytest.raises(KeyNotFound):
        await s.update("/nope", b"", None)
    with pytest.raises(KeyNotFound):
        await s.update("/nope", b"", 1)
    with pytest.raises(KeyNotFound):
        await s.delete("/nope", None)


async def test_delete_returns_last_value_at_the_deletion_revision(backend):
    s = await backend.open()
    a = await s.create("/k", b"v")
    gone = await s.delete("/k", a.mod_revision)
    assert gone.value == b"v" and gone.mod_revision > a.mod_revision and gone.create_revision == a.create_revision
    assert await s.get("/k") is None
    again = await s.create("/k", b"w")  # a deleted key can be created anew
    assert again.create_revision == again.mod_revision > gone.mod_revision


async def test_watch_from_revision_replays_then_follows(backend):
    s = await backend.open()
    a = await s.create("/p/a", b"1")
    await s.update("/p/a", b"2", None)
    await s.create("/q/x", b"other prefix")
    w = s.watch("/p/", a.mod_revision)
    await s.delete("/p/a", None)
    got = await next_events(w, 2)
    w.close()
    assert [(ev.type, ev.kv.value) for ev in got] == [("PUT", b"2"), ("DELETE", b"2")]


async def test_watch_tells_creates_from_updates(backend):
    """A create has no previous value; an update and a delete carry the one they replaced."""
    s = await backend.open()
    w = s.watch("/p/", s.revision)
    a = await s.create("/p/a", b"1")
    await s.update("/p/a", b"2", a.mod_revision)
    await s.delete("/p/a", None)
    created, updated, deleted = await next_events(w, 3)
    w.close()
    assert created.prev is None and created.kv.create_revision == created.revision == a.mod_revision
    assert updated.prev is not None and updated.prev.value == b"1" and updated.kv.value == b"2"
    assert deleted.type == "DELETE" and deleted.prev is not None and deleted.prev.value == b"2"
    assert created.revision < updated.revision < deleted.revision


async def test_list_at_revision_is_one_snapshot(backend, monkeypatch):
    """A list at a past revision shows the keys as they were, however many pages it takes."""
    monkeypatch.setattr(etcd_store, "PAGE", 7)
    s = await backend.open()
    for i in range(20):
        await s.create(f"/l/{i:02d}", b"old")
    _, rev = await s.list("/l/")
    for i in range(0, 20, 2):
        await s.update(f"/l/{i:02d}", b"new", None)
    await s.delete("/l/19", None)
    await s.create("/l/99", b"later")
    then = await s.list_at("/l/", rev)
    assert [kv.key for kv in then] == [f"/l/{i:02d}" for i in range(20)]
    assert {kv.value for kv in then} == {b"old"}
    now, _ = await s.list("/l/")
    assert len(now) == 20 and now[-1].key == "/l/99"


async def test_compacted_revision_is_refused(backend):
    s = await backend.open()
    a = await s.create("/p/a", b"1")
    for i in range(5):
        await s.update("/p/a", str(i).encode(), None)
    await s.compact(s.revision - 1)
    with pytest.raises(Compacted):
        s.watch("/p/", a.mod_revision)
    with pytest.raises(Compacted):
        await s.list_at("/p/", a.mod_revision)
    s.watch("/p/", s.revision).close()  # the current revision is always watchable
    assert (await s.get("/p/a")).value == b"4"


async def test_restart_keeps_objects_and_revision(backend):
    s = await backend.open()
    await s.create("/p/a", b"1")
    b = await s.create("/p/b", b"2")
    await s.delete("/p/a", None)
    rev = s.revision
    await s.close()
    s2 = await backend.open()
    assert s2.revision == rev
    assert await s2.get("/p/a") is None
    assert (await s2.get("/p/b")).mod_revision == b.mod_revision
    # The watch window survives a restart: a client can resume from an older revision.
    w = s2.watch("/p/", b.mod_revision)
    ev = (await next_events(w, 1))[0]
    assert ev.type == "DELETE" and ev.kv.key == "/p/a"
    nxt = await s2.create("/p/c", b"3")
    assert nxt.mod_revision > rev


# -- etcd only -------------------------------------------------------------------------------

@pytest.fixture
def etcd(tmp_path):
    """A one-member etcd for this test."""
    e = start_etcd(tmp_path / "etcd")
    yield e
    e.stop()


async def open_etcd(e: Etcd) -> EtcdStore:
    """A store on ``e`` with the API server's key layout."""
    return await EtcdStore.open(parse_endpoints(e.endpoint), layout=KeyLayout(r.store_prefix() for r in RESOURCES))


async def test_etcd_keys_are_laid_out_as_kube_apiserver_lays_them(etcd):
    s = await open_etcd(etcd)
    try:
        for key in ("/registry/core/pods/default/p", "/registry/core/nodes/n", "/registry/core/services/default/s",
                    "/registry/core/endpoints/default/s", "/registry/apps/deployments/default/d",
                    "/registry/rbac.authorization.k8s.io/clusterroles/admin",
                    "/registry/apiextensions.k8s.io/customresourcedefinitions/crontabs.stable.example.com",
                    "/registry/stable.example.com/crontabs/default/c"):
            await s.create(key, b'{"kind":"X"}')
        keys = set(etcd.etcdctl("get", "--prefix", "/registry/", "--keys-only").split())
        assert keys == {"/registry/pods/default/p", "/registry/minions/n", "/registry/services/specs/default/s",
                        "/registry/services/endpoints/default/s", "/registry/deployments/default/d",
                        "/registry/clusterroles/admin",
                        "/registry/apiextensions.k8s.io/customresourcedefinitions/crontabs.stable.example.com",
                        "/registry/stable.example.com/crontabs/default/c"}
        assert etcd.etcdctl("get", "--print-value-only", "/registry/minions/n").strip() == '{"kind":"X"}'
        # The API server's own keys come back, and a prefix above several resources still lists them all.
        rbac, _ = await s.list("/registry/rbac.authorization.k8s.io/")
        assert [kv.key for kv in rbac] == ["/registry/rbac.authorization.k8s.io/clusterroles/admin"]
        core, _ = await s.list("/registry/core/")
        assert [kv.key for kv in core] == ["/registry/core/endpoints/default/s", "/registry/core/nodes/n",
                                           "/registry/core/pods/default/p", "/registry/core/services/default/s"]
    finally:
        await s.close()


async def test_two_stores_on_one_etcd_see_each_others_writes_in_order(etcd):
    """What two API servers on one etcd need: a write through one reaches the watchers of the other."""
    one, two = await open_etcd(etcd), await open_etcd(etcd)
    try:
        w = two.watch("/registry/core/pods/", two.revision)
        a = await one.create("/registry/core/pods/ns/a", b"1")
        await one.update("/registry/core/pods/ns/a", b"2", a.mod_revision)
        b = await two.create("/registry/core/pods/ns/b", b"3")
        got = await next_events(w, 3)
        assert [(ev.kv.key, ev.kv.value) for ev in got] == [
            ("/registry/core/pods/ns/a", b"1"), ("/registry/core/pods/ns/a", b"2"), ("/registry/core/pods/ns/b", b"3")]
        assert got[-1].revision == b.mod_revision
        with pytest.raises(RevisionMismatch):  # compare-and-swap holds across servers
            await two.update("/registry/core/pods/ns/a", b"x", a.mod_revision)
    finally:
        await one.close()
        await two.close()


async def test_etcd_restart_loses_nothing_and_watches_resume(etcd):
    s = await open_etcd(etcd)
    try:
        w = s.watch("/p/", s.revision)
        await s.create("/p/a", b"1")
        assert (await next_events(w, 1))[0].kv.value == b"1"
        etcd.stop()
        etcd.start()
        # The store reconnects by itself; the next write may wait for that.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                await s.create("/p/b", b"2")
                break
            except etcd_store.Unavailable:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        ev = (await next_events(w, 1, timeout=30))[0]
        assert ev.kv.key == "/p/b" and ev.prev is None
        assert (await s.get("/p/a")).value == b"1"
    finally:
        await s.close()


def test_endpoints_are_parsed_as_k3s_takes_them():
    eps = parse_endpoints("https://10.0.0.1:2379,https://etcd.example:12379")
    assert [(e.scheme, e.host, e.port) for e in eps] == [("https", "10.0.0.1", 2379), ("https", "etcd.example", 12379)]
    assert parse_endpoints("http://127.0.0.1")[0].port == 2379
    for bad in ("", "unix:///run/etcd.sock", "http://127.0.0.1:2379,https://127.0.0.2:2379", "http://h:99999",
                "http://h:2379/path"):
        with pytest.raises(ValueError):
            parse_endpoints(bad)


async def test_etcd_over_tls_with_client_certificates(tmp_path):
    """https:// endpoints with --datastore-cafile/-certfile/-keyfile; no certificate, no store."""
    from kubelite.pki import PKI
    from kubelite.store.etcd import TLSFiles
    pki = PKI(str(tmp_path / "pki"))
    pki.ensure()
    d = tmp_path / "pki" / "tls"
    pki.issue_serving("etcd", ["127.0.0.1"], str(d / "etcd.crt"), str(d / "etcd.key"))
    pki.issue_client("kube-apiserver-etcd-client", [], str(d / "client.crt"), str(d / "client.key"))
    client = (pki.ca_cert, str(d / "client.crt"), str(d / "client.key"))
    e = start_etcd(tmp_path / "etcd", tls=(pki.ca_cert, str(d / "etcd.crt"), str(d / "etcd.key")), client_tls=client)
    try:
        assert e.endpoint.startswith("https://")
        s = await EtcdStore.open(parse_endpoints(e.endpoint), TLSFiles(*client))
        try:
            kv = await s.create("/registry/core/namespaces/secure", b"{}")
            w = s.watch("/registry/core/namespaces/", kv.mod_revision - 1)
            assert (await next_events(w, 1))[0].kv.key == "/registry/core/namespaces/secure"
        finally:
            await s.close()
        assert "/registry/core/namespaces/secure" in e.etcdctl("get", "--prefix", "/registry/", "--keys-only")
        # Trusting the CA but showing no client certificate: etcd refuses the connection.
        with pytest.raises(etcd_store.Unavailable):
            await EtcdStore.open(parse_endpoints(e.endpoint), TLSFiles(pki.ca_cert), sync_timeout=5, timeout=3)
    finally:
        e.stop()


async def test_etcd_events_expire_with_their_lease(etcd, monkeypatch):
    """As kube-apiserver's --event-ttl: Events are written on a lease and vanish with it
    (a DELETE reaches watchers); nothing else is."""
    monkeypatch.setattr(etcd_store, "LEASE_REUSE", 0.0)
    s = await EtcdStore.open(parse_endpoints(etcd.endpoint), layout=KeyLayout(r.store_prefix() for r in RESOURCES),
                             event_ttl=2)
    try:
        w = s.watch("/registry/core/", s.revision)
        ev = await s.create("/registry/core/events/default/web.1", b'{"reason":"Started"}')
        await s.create("/registry/core/configmaps/default/stays", b"{}")
        got = await next_events(w, 3, timeout=30)
        assert [(e.type, e.kv.key) for e in got] == [
            ("PUT", "/registry/core/events/default/web.1"), ("PUT", "/registry/core/configmaps/default/stays"),
            ("DELETE", "/registry/core/events/default/web.1")]
        assert got[2].revision > ev.mod_revision
        assert await s.get("/registry/core/events/default/web.1") is None
        assert await s.get("/registry/core/configmaps/default/stays") is not None
    finally:
        await s.close()


async def test_etcd_endpoints_are_tried_in_turn(etcd):
    """A list of endpoints whose first member does not answer: the store uses the next one."""
    s = await EtcdStore.open(parse_endpoints(f"http://127.0.0.1:1,{etcd.endpoint}"))
    try:
        w = s.watch("/p/", s.revision)
        kv = await s.create("/p/a", b"1")
        assert (await s.get("/p/a")).mod_revision == kv.mod_revision
        assert (await next_events(w, 1))[0].kv.key == "/p/a"
    finally:
        await s.close()
