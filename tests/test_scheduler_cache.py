"""The scheduler's per-node accounting against the fake API: no phantom pods after a bind
that fails in any way, assumed pods that expire, the cache debugger, upstream's non-zero
requests for spreading, and running totals instead of a sum over every pod per placement."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakeapi import FakeAPI, FakeResource, RecordingRecorder

from kubelite.api import meta
from kubelite.api.resources import NODES, PODS, ResourceInfo
from kubelite.scheduler import plugins
from kubelite.scheduler.cache import SchedulerCache
from kubelite.scheduler.plugins import Usage
from kubelite.scheduler.scheduler import Scheduler

Obj = dict[str, Any]


@pytest.fixture(autouse=True)
def fresh_request_cache() -> None:
    """Parsed requests and allocatable are cached by resourceVersion; every FakeAPI starts again at 1."""
    plugins._REQUESTS.clear()
    plugins._ALLOCATABLE.clear()


class BindingPods(FakeResource):
    """The pods resource with pods/binding: sets spec.nodeName, or fails as told."""

    def __init__(self, api: BindingAPI, info: ResourceInfo):
        super().__init__(api, info)
        self.bapi = api

    async def create_subresource(self, name: str, namespace: str, subresource: str, body: Obj) -> Obj:
        assert subresource == "binding"
        if self.bapi.gate is not None:
            await self.bapi.gate.wait()
        if self.bapi.bind_error is not None:
            raise self.bapi.bind_error
        if self.bapi.lose_binds:
            return {"kind": "Status", "status": "Success"}  # accepted, but no watch event ever says so
        pod = self.api.get_obj("pods", namespace, name)
        pod["spec"]["nodeName"] = body["target"]["name"]
        self.api.update(self.info, pod)
        return {"kind": "Status", "status": "Success"}


class BindingAPI(FakeAPI):
    """A FakeAPI whose pods serve the binding subresource."""

    def __init__(self) -> None:
        super().__init__()
        self.bind_error: BaseException | None = None
        self.lose_binds = False
        self.gate: asyncio.Event | None = None  # binds wait for it when set

    def resource(self, info: ResourceInfo) -> FakeResource:
        self.infos[info.plural] = info
        return BindingPods(self, info) if info.plural == "pods" else FakeResource(self, info)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def add_node(api: FakeAPI, name: str, *, pods: int = 110, cpu: str = "4", memory: str = "8Gi") -> None:
    api.create(NODES, {"metadata": {"name": name}, "status": {
        "allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods)},
        "conditions": [{"type": "Ready", "status": "True"}]}}, "")


def add_pod(api: FakeAPI, name: str, *, owner: str = "", requests: Obj | None = None) -> Obj:
    c: Obj = {"name": "c", "image": "x"}
    if requests:
        c["resources"] = {"requests": requests}
    md: Obj = {"name": name}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner,
                                  "controller": True}]
    return api.create(PODS, {"metadata": md, "spec": {"containers": [c]}}, "default")


def node_of(api: FakeAPI, name: str) -> str | None:
    return api.get_obj("pods", "default", name)["spec"].get("nodeName")


def make(clock: Clock | None = None) -> tuple[BindingAPI, Scheduler]:
    api = BindingAPI()
    cache = SchedulerCache(clock=clock) if clock else None
    return api, Scheduler(api.client, api.factory, recorder=RecordingRecorder(), cache=cache)


async def test_a_bind_failing_with_a_connection_error_leaves_no_phantom_pod() -> None:
    api, s = make()
    add_node(api, "n1", pods=1)
    add_pod(api, "a")
    api.bind_error = ConnectionResetError("server closed the connection")
    with pytest.raises(ConnectionResetError):
        await s.sync("default/a")
    assert s.cache.pods_on("n1") == []
    assert not s.cache.is_assumed("default/a")
    api.bind_error = None
    await s.sync("default/a")  # the retry places it
    assert node_of(api, "a") == "n1"
    assert s.cache.pods_on("n1") == ["default/a"]


async def test_a_placement_counts_the_pods_whose_binds_are_still_in_flight() -> None:
    api, s = make()
    add_node(api, "n1", pods=1)
    add_node(api, "n2", pods=1)
    for name in ("a", "b", "c"):
        add_pod(api, name)
    api.gate = asyncio.Event()
    # Placement must not wait for the bind (held back by the gate): a deadline, not a hang.
    await asyncio.wait_for(s.sync_bind_later("default/a"), 30)
    await asyncio.wait_for(s.sync_bind_later("default/b"), 30)
    assert s.cache.is_assumed("default/a") and s.cache.is_assumed("default/b")
    await s.sync_bind_later("default/c")  # both nodes are full with assumed pods
    assert not s.cache.is_assumed("default/c")
    assert {s.cache.node_of("default/a"), s.cache.node_of("default/b")} == {"n1", "n2"}
    assert node_of(api, "a") is None and node_of(api, "b") is None  # the binds wait
    api.gate.set()
    await s.wait_for_binds()
    assert {node_of(api, "a"), node_of(api, "b")} == {"n1", "n2"}
    assert node_of(api, "c") is None


async def test_a_background_bind_that_fails_forgets_the_pod_and_queues_it_again() -> None:
    api, s = make()
    add_node(api, "n1", pods=1)
    add_pod(api, "a")
    await s.queue.get()  # the informer queued it; take it as the run loop would
    s.queue.done("default/a")
    api.bind_error = ConnectionResetError("server closed the connection")
    await s.sync_bind_later("default/a")
    await s.wait_for_binds()
    assert s.cache.pods_on("n1") == []
    assert not s.cache.is_assumed("default/a")
    api.bind_error = None
    # Back in the queue after its back-off (1 s for a first failure).
    assert await asyncio.wait_for(s.queue.get(), 30) == "default/a"
    await s.sync("default/a")
    assert node_of(api, "a") == "n1"


async def test_a_phantom_pod_does_not_make_a_free_node_too_full() -> None:
    api, s = make()
    add_node(api, "n1", pods=1)
    add_pod(api, "a")
    add_pod(api, "b")
    api.bind_error = TimeoutError()
    with pytest.raises(TimeoutError):
        await s.sync("default/a")
    api.bind_error = None
    await s.sync("default/b")
    assert node_of(api, "b") == "n1"


async def test_assumed_pod_expires_when_its_binding_never_shows_up() -> None:
    clock = Clock()
    api, s = make(clock)
    add_node(api, "n1", pods=1)
    add_pod(api, "a")
    add_pod(api, "b")
    api.lose_binds = True
    await s.sync("default/a")
    assert s.cache.pods_on("n1") == ["default/a"]  # assumed while the watch may still be behind
    api.lose_binds = False
    await s.sync("default/b")
    assert node_of(api, "b") is None  # the node is full for now
    await s.housekeeping()
    assert s.cache.pods_on("n1") == ["default/a"]
    clock.t += s.cache.ttl + 1
    await s.housekeeping()
    assert s.cache.pods_on("n1") == []
    await s.sync("default/b")
    assert node_of(api, "b") == "n1"


async def test_an_assumed_pod_whose_watch_event_is_late_stays_counted() -> None:
    clock = Clock()
    api, s = make(clock)
    add_node(api, "n1", pods=1)
    add_pod(api, "a")
    add_pod(api, "b")
    api.lose_binds = True
    await s.sync("default/a")
    # The server did bind it; only the watch has not said so yet.
    api.objects["pods"]["default/a"]["spec"]["nodeName"] = "n1"
    clock.t += s.cache.ttl + 1
    await s.housekeeping()
    assert s.cache.pods_on("n1") == ["default/a"]
    assert not s.cache.is_assumed("default/a")
    api.lose_binds = False
    await s.sync("default/b")
    assert node_of(api, "b") is None  # the node stays full


async def test_the_informer_confirms_an_assumed_pod_for_good() -> None:
    clock = Clock()
    api, s = make(clock)
    add_node(api, "n1")
    add_pod(api, "a")
    await s.sync("default/a")
    assert not s.cache.is_assumed("default/a")
    clock.t += s.cache.ttl + 1
    await s.housekeeping()
    assert s.cache.pods_on("n1") == ["default/a"]


async def test_cache_debugger_repairs_phantom_missing_and_misplaced_pods() -> None:
    api, s = make()
    add_node(api, "n1")
    add_node(api, "n2")
    for name in ("a", "b", "c"):
        add_pod(api, name)
        await s.sync(f"default/{name}")
    placed = {n: node_of(api, n) for n in ("a", "b", "c")}
    # Corrupt the cache the ways a lost event would: a phantom, a missing pod, a wrong node.
    s.cache._place("default/ghost", "n1", {"metadata": {"name": "ghost"}, "spec": {"containers": []}})
    s.cache._unplace("default/a")
    other = "n1" if placed["b"] == "n2" else "n2"
    s.cache._place("default/b", other, api.get_obj("pods", "default", "b"))
    diffs = s.check_cache()
    assert len(diffs) == 3, diffs
    assert any("ghost" in d for d in diffs)
    for name, node in placed.items():
        assert s.cache.node_of(f"default/{name}") == node
    assert s.cache.node_of("default/ghost") is None
    assert s.check_cache() == []


async def test_cache_debugger_fixes_running_totals() -> None:
    api, s = make()
    add_node(api, "n1")
    add_pod(api, "a", requests={"cpu": "500m"})
    await s.sync("default/a")
    info = s.cache.node_info(api.get_obj("nodes", "default", "n1"))
    assert info.usage is not None
    info.usage.cpu += 700  # drift
    assert any("running totals" in d for d in s.check_cache())
    assert s.cache.node_info(api.get_obj("nodes", "default", "n1")).requested() == (500, 0, 1)


async def test_pods_without_requests_spread_over_nodes() -> None:
    """Upstream scores a pod without requests as 100m CPU / 200Mi: bare pods spread evenly."""
    api, s = make()
    for n in ("n1", "n2", "n3"):
        add_node(api, n)
    for i in range(30):
        add_pod(api, f"p{i}")
        await s.sync(f"default/p{i}")
    counts = {n: sum(node_of(api, f"p{i}") == n for i in range(30)) for n in ("n1", "n2", "n3")}
    assert counts == {"n1": 10, "n2": 10, "n3": 10}


def test_nonzero_requests_default_only_missing_values() -> None:
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b", "resources": {"requests": {"cpu": "0",
                                                                                       "memory": "1Gi"}}}]}}
    assert plugins.pod_requests_nonzero(pod) == (100, 200 * 2**20 + 2**30)
    assert plugins.pod_requests(pod) == (0, 2**30)


async def test_a_placement_does_not_re_add_every_pod_on_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    api, s = make()
    add_node(api, "n1")
    for i in range(40):
        add_pod(api, f"p{i}", requests={"cpu": "10m"})
        await s.sync(f"default/p{i}")
    calls = 0
    real = plugins._cached

    def counting(pod: Obj) -> tuple[int, int, int, int]:
        nonlocal calls
        calls += 1
        return real(pod)
    monkeypatch.setattr(plugins, "_cached", counting)
    add_pod(api, "last", requests={"cpu": "10m"})
    await s.sync("default/last")
    assert node_of(api, "last") == "n1"
    assert calls < 20, f"{calls} request computations for one placement next to 40 pods"
    info = s.cache.node_info(api.get_obj("nodes", "default", "n1"))
    assert info.requested() == (410, 0, 41)


async def test_running_totals_follow_pods_leaving_and_finishing() -> None:
    api, s = make()
    add_node(api, "n1")
    owner = "rs-uid"
    for i in range(6):
        add_pod(api, f"p{i}", owner=owner, requests={"cpu": "100m", "memory": "64Mi"})
        await s.sync(f"default/p{i}")
    api.delete(PODS, "p0", "default")
    p1 = api.get_obj("pods", "default", "p1")
    p1["status"]["phase"] = "Succeeded"
    api.update(PODS, p1, "status")
    info = s.cache.node_info(api.get_obj("nodes", "default", "n1"))
    pods = [api.get_obj("pods", "default", f"p{i}") for i in range(2, 6)]
    assert info.usage == Usage.of(pods)
    assert info.requested() == (400, 4 * 64 * 2**20, 4)
    assert info.same_owner(owner) == 4
    assert sorted(s.cache.pods_on("n1")) == [meta.key(p) for p in pods]
