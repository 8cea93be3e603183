"""The API server's in-memory copies for admission (kubelite/apiserver/lookups.py, issue 14).

A create reads its Namespace, a pod its ServiceAccount, the global-default PriorityClass
and whether its namespace has ResourceQuotas and LimitRanges from copies fed by the
store's watch.  What a client has written through this server must be what the next
request is judged by; a miss must go to the store (another server may have written the
object), and quota usage is always read from the store.  Each spec runs over both stores
(the registry and its admission, as the API server wires them); one runs the real server.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from kubelite.api import errors
from kubelite.api.resources import (
    LIMITRANGES,
    NAMESPACES,
    PODS,
    PRIORITYCLASSES,
    RESOURCEQUOTAS,
    SERVICEACCOUNTS,
)
from kubelite.apiserver import admission
from kubelite.apiserver.allocators import ServiceAllocator
from kubelite.apiserver.lookups import KindCopy, Lookups
from kubelite.apiserver.registry import Registry
from kubelite.client import errors as client_errors
from kubelite.client.rest import Client
from kubelite.store.base import KV, Store
from kubelite.store.sqlite import SqliteStore
from tests import test_store
from tests.test_store import Backend

backend = test_store.backend  # each spec once per store

CIDR = "127.96.0.0/24"


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


async def following(lookups: Lookups, timeout: float = 20.0) -> None:
    """Wait until every copy has listed and follows the store."""
    copies: list[KindCopy] = [lookups.namespaces, lookups.service_accounts, lookups.priority_classes,
                              lookups.quotas, lookups.limit_ranges]
    deadline = time.monotonic() + timeout
    while not all(c.current() for c in copies):
        assert time.monotonic() < deadline, "the copies did not start following the store"
        await asyncio.sleep(0.02)


async def server_registry(store: Store) -> tuple[Registry, Lookups]:
    """A registry with the copies and the built-in admission, as the API server wires them."""
    reg = Registry(store, ServiceAllocator(CIDR, store=store))
    lookups = Lookups(store)
    reg.lookups = lookups
    admission.install(reg, lookups)
    lookups.start()
    await following(lookups)
    return reg, lookups


class CountingGets:
    """Counts the store reads (get and list) of keys under a prefix, by wrapping the store's methods."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Store, prefix: str):
        self.count = 0
        get, list_ = store.get, store.list

        async def counted_get(key: str) -> KV | None:
            self.count += key.startswith(prefix)
            return await get(key)

        async def counted_list(p: str) -> tuple[list[KV], int]:
            self.count += p.startswith(prefix)
            return await list_(p)
        monkeypatch.setattr(store, "get", counted_get)
        monkeypatch.setattr(store, "list", counted_list)


async def test_a_pod_created_right_after_its_namespace_is_admitted_from_the_copy(backend: Backend, monkeypatch):
    reg, lookups = await server_registry(await backend.open())
    reads = CountingGets(monkeypatch, reg.store, NAMESPACES.store_prefix())
    try:
        for i in range(25):
            await reg.create(NAMESPACES, "", namespace(f"ns-{i}"))
            created = await reg.create(PODS, f"ns-{i}", pod("p"))
            assert created["metadata"]["namespace"] == f"ns-{i}"
        assert reads.count == 0  # every namespace came from the copy, none from the store
    finally:
        await lookups.stop()


async def test_a_miss_in_the_copy_is_read_from_the_store(backend: Backend, monkeypatch):
    """As when another API server made the object a moment ago: the copy has not seen it yet."""
    reg, lookups = await server_registry(await backend.open())
    try:
        for copy in (lookups.namespaces, lookups.service_accounts, lookups.priority_classes):
            monkeypatch.setattr(copy, "_apply", lambda ev: None)  # events never reach the copy
        await reg.create(NAMESPACES, "", namespace("late"))
        await reg.create(SERVICEACCOUNTS, "late", {"metadata": {"name": "builder"},
                                                   "imagePullSecrets": [{"name": "regcred"}]})
        await reg.create(PRIORITYCLASSES, "", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                               "metadata": {"name": "late-high"}, "value": 1000})
        assert lookups.namespaces.get("", "late") is None
        created = await reg.create(PODS, "late", pod("p", serviceAccountName="builder",
                                                     priorityClassName="late-high"))
        assert created["spec"]["imagePullSecrets"] == [{"name": "regcred"}]  # the ServiceAccount was found
        assert created["spec"]["priority"] == 1000
    finally:
        await lookups.stop()


async def test_a_namespace_created_through_another_server_admits_pods_at_once(tmp_path):
    """Two registries on one etcd, as two API servers have (a SQLite file has one server)."""
    etcd = Backend("etcd", tmp_path)
    other = Registry(s := await etcd.open(), ServiceAllocator(CIDR, store=s))
    reg, lookups = await server_registry(await etcd.open())
    try:
        for i in range(25):
            await other.create(NAMESPACES, "", namespace(f"elsewhere-{i}"))
            await reg.create(PODS, f"elsewhere-{i}", pod("p"))
        with pytest.raises(errors.NotFound):
            await reg.create(PODS, "nowhere", pod("p"))
    finally:
        await lookups.stop()
        await etcd.close()


async def test_a_terminating_namespace_refuses_new_content_at_once(backend: Backend):
    reg, lookups = await server_registry(await backend.open())
    try:
        for i in range(10):
            await reg.create(NAMESPACES, "", namespace(f"doomed-{i}"))
            await reg.create(PODS, f"doomed-{i}", pod("before"))
            await reg.delete(NAMESPACES, "", f"doomed-{i}", {})
            with pytest.raises(errors.Forbidden, match="because it is being terminated"):
                await reg.create(PODS, f"doomed-{i}", pod("after"))
    finally:
        await lookups.stop()


async def test_a_new_global_default_priority_class_applies_to_the_next_pod(backend: Backend):
    reg, lookups = await server_registry(await backend.open())
    try:
        await reg.create(NAMESPACES, "", namespace("prio"))
        assert (await reg.create(PODS, "prio", pod("before")))["spec"]["priority"] == 0
        await reg.create(PRIORITYCLASSES, "", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                               "metadata": {"name": "everyone"}, "value": 42,
                                               "globalDefault": True})
        spec = (await reg.create(PODS, "prio", pod("after")))["spec"]
        assert (spec["priority"], spec["priorityClassName"]) == (42, "everyone")
        await reg.delete(PRIORITYCLASSES, "", "everyone", {})
        with pytest.raises(errors.Forbidden, match="no PriorityClass with name everyone was found"):
            await reg.create(PODS, "prio", pod("named", priorityClassName="everyone"))
        assert (await reg.create(PODS, "prio", pod("last")))["spec"]["priority"] == 0
    finally:
        await lookups.stop()


async def test_a_new_quota_refuses_the_next_pod_over_it(backend: Backend):
    reg, lookups = await server_registry(await backend.open())
    try:
        await reg.create(NAMESPACES, "", namespace("quota"))
        await reg.create(PODS, "quota", pod("before"))  # the namespace had no quota then
        await reg.create(RESOURCEQUOTAS, "quota", {"metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}})

        def observed(q: dict) -> dict:  # what the quota controller writes
            q["status"] = {"hard": {"pods": "1"}, "used": {"pods": "1"}}
            return q
        await reg.guaranteed_update(RESOURCEQUOTAS, "quota", "one-pod", observed, subresource="status")
        with pytest.raises(errors.Forbidden, match="exceeded quota: one-pod"):
            await reg.create(PODS, "quota", pod("over"))
        # The usage is read from the store: a lower usage written just now lets one pod in.
        await reg.guaranteed_update(RESOURCEQUOTAS, "quota", "one-pod",
                                    lambda q: {**q, "status": {"hard": {"pods": "1"}, "used": {"pods": "0"}}},
                                    subresource="status")
        await reg.create(PODS, "quota", pod("fits"))
        assert (await reg.get(RESOURCEQUOTAS, "quota", "one-pod"))["status"]["used"] == {"pods": "1"}
        with pytest.raises(errors.Forbidden, match="exceeded quota: one-pod"):
            await reg.create(PODS, "quota", pod("over-again"))
    finally:
        await lookups.stop()


async def test_a_new_limit_range_defaults_the_next_pod(backend: Backend):
    reg, lookups = await server_registry(await backend.open())
    try:
        await reg.create(NAMESPACES, "", namespace("limits"))
        await reg.create(PODS, "limits", pod("before"))
        await reg.create(LIMITRANGES, "limits", {"metadata": {"name": "defaults"}, "spec": {"limits": [
            {"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]}})
        res = (await reg.create(PODS, "limits", pod("after")))["spec"]["containers"][0]["resources"]
        assert res == {"limits": {"cpu": "500m"}, "requests": {"cpu": "100m"}}
        await reg.delete(LIMITRANGES, "limits", "defaults", {})
        assert not (await reg.create(PODS, "limits", pod("last")))["spec"]["containers"][0].get("resources")
    finally:
        await lookups.stop()


async def wait_until(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_after_a_store_reset_the_copy_never_answers_from_the_old_state(tmp_path):
    """The fixture's reset ends every watch without events: the copy must not serve what it had."""
    store = SqliteStore(str(tmp_path / "db"))
    reg, lookups = await server_registry(store)
    try:
        saved = store.snapshot()
        await reg.create(NAMESPACES, "", namespace("gone-after-reset"))
        assert await lookups.namespace("gone-after-reset") is not None
        await store.restore(saved)
        assert await lookups.namespace("gone-after-reset") is None
        with pytest.raises(errors.NotFound):
            await reg.create(PODS, "gone-after-reset", pod("p"))
        await wait_until(lookups.namespaces.current, "the copy to list again")
        assert lookups.namespaces.get("", "gone-after-reset") is None
        await reg.create(NAMESPACES, "", namespace("after-reset"))
        assert lookups.namespaces.current() and lookups.namespaces.get("", "after-reset") is not None
        await lookups.reload()  # what the reset endpoint does before answering
        assert lookups.namespaces.current() and lookups.namespaces.get("", "after-reset") is not None
    finally:
        await lookups.stop()
        await store.close()


def test_pods_created_right_after_their_namespace_through_the_server(api_server):
    async def run() -> None:
        client = Client(api_server.client_config())
        try:
            for i in range(20):
                name = f"lookups-{i}-{time.monotonic_ns() % 100000}"
                await client.resource(NAMESPACES).create(namespace(name))
                await client.resource(PODS).create(pod("p"), name)
                await client.resource(NAMESPACES).delete(name)
                with pytest.raises(client_errors.Forbidden, match="being terminated"):
                    await client.resource(PODS).create(pod("q"), name)
        finally:
            await client.close()
    asyncio.run(run())
