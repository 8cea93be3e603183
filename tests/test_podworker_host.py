"""A pod worker driven through its PodHost seam alone: no agent, no API server.

The host here is a recording stand-in over the fake runtime, which is what host.py's
protocols are for: the worker's whole life (pull, start, status, drain, stop, delete)
is visible as calls on the host.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from kubelite.node.host import PodHost
from kubelite.node.podworker import PodWorker
from kubelite.node.runtime.base import Runtime
from kubelite.node.runtime.fake import FakeRuntime

Obj = dict[str, Any]
BOOTCAMP = "gcr.io/google-samples/kubernetes-bootcamp:v1"


class RecordingEvents:
    """Collects (reason, message) of every Event."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def event(self, obj: Obj, type_: str, reason: str, message: str, *, field_path: str = "") -> None:
        self.seen.append((reason, message))


class RecordingHost:
    """A PodHost that remembers what the worker asked of it."""

    node_ip = "127.0.0.1"

    def __init__(self, runtime: Runtime, config: dict[str, Obj] | None = None,
                 services: list[Obj] | None = None) -> None:
        self.runtime = runtime
        self.services = services or []
        self.recorder = RecordingEvents()
        self.config = config or {}
        self.statuses: list[Obj] = []
        self.drained: list[float] = []
        self.deleted: list[str] = []

    def services_for(self, pod: Obj) -> list[Obj]:
        return self.services

    def image_present(self, image: str) -> bool:
        return False

    async def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.config.get(f"{kind}/{namespace}/{name}")

    async def write_status(self, pod: Obj, status: Obj) -> None:
        self.statuses.append(status)

    async def wait_drained(self, pod: Obj, timeout: float) -> None:
        self.drained.append(timeout)

    async def delete_pod(self, pod: Obj) -> None:
        self.deleted.append(pod["metadata"]["uid"])


# A Service that selects _pod(): its deletion waits for the proxies to drain it.
WEB_SERVICE = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"app": "web"}}}


def _pod(**container: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "0b6a7c1e-0000-4000-8000-000000000001",
                         "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": BOOTCAMP, **container}],
                     "terminationGracePeriodSeconds": 5}}


async def _until(cond: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _ready(status: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


async def test_pods_should_be_submitted_and_removed(tmp_path):
    host = RecordingHost(FakeRuntime(str(tmp_path)), services=[WEB_SERVICE])
    checked: PodHost = host  # the stand-in is a PodHost as far as the worker is concerned
    pod = _pod()
    worker = PodWorker(checked, pod)
    worker.start()
    try:
        await _until(lambda: host.statuses and _ready(host.statuses[-1]), "a Ready status")
        running = host.statuses[-1]
        assert running["phase"] == "Running"
        assert running["hostIP"] == "127.0.0.1" and running["podIP"]
        reasons = [r for r, _ in host.recorder.seen]
        assert reasons[:4] == ["Pulling", "Pulled", "Created", "Started"]

        # Deletion: unready first, drained within the grace period, then the pod object goes.
        deleting = dict(pod, metadata=dict(pod["metadata"], deletionTimestamp="2025-01-01T00:00:00Z",
                                           deletionGracePeriodSeconds=5))
        worker.update(deleting)
        await _until(worker.done.is_set, "the worker to finish")
        assert host.deleted == [pod["metadata"]["uid"]]
        assert len(host.drained) == 1 and 0 < host.drained[0] <= 5
        assert not _ready(host.statuses[-1])
        assert ("Killing", "Stopping container c") in host.recorder.seen
    finally:
        await worker.kill_now()


async def test_a_missing_configmap_is_a_create_container_config_error(tmp_path):
    host = RecordingHost(FakeRuntime(str(tmp_path)))
    worker = PodWorker(host, _pod(envFrom=[{"configMapRef": {"name": "settings"}}]))
    worker.start()
    try:
        def waiting_reason() -> str | None:
            if not host.statuses:
                return None
            state = host.statuses[-1]["containerStatuses"][0]["state"]
            return (state.get("waiting") or {}).get("reason")
        await _until(lambda: waiting_reason() == "CreateContainerConfigError", "CreateContainerConfigError")
        assert ("Failed", 'Error: configmap "settings" not found') in host.recorder.seen
        assert not host.deleted
    finally:
        await worker.kill_now()


async def test_a_fake_pod_goes_from_pending_to_running_and_ready_in_one_status_write(tmp_path, monkeypatch):
    # Issue 16: every status write is a request and a watch event to every pod watcher. A start
    # whose container comes up within the hold (the sandbox, the image lookup and the runtime's
    # start delay) is reported once, Running and Ready, not first as ContainerCreating.
    from kubelite.node import podworker
    monkeypatch.setattr(podworker, "START_HOLD", 30.0)  # the hold ends when the start does
    host = RecordingHost(FakeRuntime(str(tmp_path), delay=0.3))
    worker = PodWorker(host, _pod())
    worker.start()
    try:
        await _until(lambda: host.statuses and _ready(host.statuses[-1]), "a Ready status")
        assert len(host.statuses) == 1, [s["containerStatuses"][0]["state"] for s in host.statuses]
        assert host.statuses[0]["phase"] == "Running"
    finally:
        await worker.kill_now()


def test_only_a_pod_a_service_may_route_to_waits_for_the_proxies_to_drain_it():
    from kubelite.node.podworker import may_be_served
    pod = {"metadata": {"name": "web", "namespace": "bench", "labels": {"app": "web", "tier": "front"}}}

    def svc(selector: dict[str, str] | None) -> Obj:
        return {"metadata": {"name": "s", "namespace": "bench"}, "spec": {"selector": selector} if selector else {}}
    assert not may_be_served(pod, [])                                   # no Service in the namespace
    assert not may_be_served(pod, [svc({"app": "db"})])                 # Services of other pods only
    assert may_be_served(pod, [svc({"app": "db"}), svc({"app": "web"})])
    assert not may_be_served(pod, [svc({"app": "web", "tier": "back"})])
    assert may_be_served(pod, [svc(None)])                              # hand-written EndpointSlices may name it
    other_ns = dict(svc({"app": "web"}), metadata={"name": "s", "namespace": "default"})
    assert not may_be_served(pod, [other_ns])                           # another namespace's Service


@pytest.mark.parametrize("services, expected", [([WEB_SERVICE], 2), ([], 1)], ids=["behind-a-service", "behind-none"])
async def test_a_deleted_pod_is_reported_unready_then_stopped_in_two_status_writes(tmp_path, monkeypatch, services,
                                                                                    expected):
    # Behind a Service: unready first (the proxies stop sending it traffic), then, once the
    # containers have stopped and the sandbox is gone, one write with all of it before the
    # pod object goes. Behind none: no drain, and only that last write.
    from kubelite.node import podworker
    monkeypatch.setattr(podworker, "START_HOLD", 30.0)
    host = RecordingHost(FakeRuntime(str(tmp_path)), services=services)
    pod = _pod()
    worker = PodWorker(host, pod)
    worker.start()
    try:
        await _until(lambda: host.statuses and _ready(host.statuses[-1]), "a Ready status")
        started = len(host.statuses)
        worker.update(dict(pod, metadata=dict(pod["metadata"], deletionTimestamp="2025-01-01T00:00:00Z",
                                              deletionGracePeriodSeconds=5)))
        await _until(worker.done.is_set, "the worker to finish")
        writes = host.statuses[started:]
        assert len(writes) == expected, [w["containerStatuses"][0]["state"] for w in writes]
        if expected == 2:
            assert not _ready(writes[0]) and "running" in writes[0]["containerStatuses"][0]["state"]
        assert not _ready(writes[-1]) and "terminated" in writes[-1]["containerStatuses"][0]["state"]
        assert len(host.drained) == expected - 1
        assert host.deleted == [pod["metadata"]["uid"]]
    finally:
        await worker.kill_now()
