"""ReplicaSet controller against tests/fakeapi.py: pods, claims, status, failures."""
from __future__ import annotations

import datetime as dt
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import PODS, REPLICASETS
from kubelite.client.errors import Forbidden, StatusError
from kubelite.controllers import replicaset_util as rsutil
from kubelite.controllers.expectations import Expectations
from kubelite.controllers.podcontrol import rank_for_deletion
from kubelite.controllers.replicaset import ReplicaSetController
from tests.fakeapi import Driver, FakeAPI, FakeKubelet, RecordingRecorder

Obj = dict[str, Any]


def replicaset(name: str, replicas: int, *, min_ready: int = 0) -> Obj:
    labels = {"app": name}
    rs = {"metadata": {"name": name, "namespace": "default", "labels": labels},
          "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                   "template": {"metadata": {"labels": dict(labels)},
                                "spec": {"containers": [{"name": "c", "image": "img"}]}}}}
    if min_ready:
        rs["spec"]["minReadySeconds"] = min_ready
    return rs


class Env:
    def __init__(self, **kw: Any) -> None:
        self.api = FakeAPI()
        self.rec = RecordingRecorder()
        self.rsc = ReplicaSetController(self.api, self.api, recorder=self.rec, now=self.api.clock, **kw)
        self.driver = Driver(self.rsc)
        self.kubelet = FakeKubelet(self.api, PODS)

    def pods(self) -> list[Obj]:
        return self.api.items("pods", "default")

    def rs(self, name: str) -> Obj:
        return self.api.get_obj("replicasets", "default", name)

    def scale(self, name: str, n: int) -> None:
        rs = self.rs(name)
        rs["spec"]["replicas"] = n
        self.api.update(REPLICASETS, rs)


async def test_replicaset_should_serve_a_basic_image_on_each_replica():
    env = Env()
    env.api.create(REPLICASETS, replicaset("web", 3), "default")
    await env.driver.settle()
    pods = env.pods()
    assert len(pods) == 3
    for p in pods:
        assert p["metadata"]["generateName"] == "web-" and len(meta.name(p)) == len("web-") + 5
        ref = meta.controller_ref(p)
        assert ref["kind"] == "ReplicaSet" and ref["name"] == "web" and ref["blockOwnerDeletion"] is True
    assert sorted(env.rec.messages("SuccessfulCreate")) == sorted(f"Created pod: {meta.name(p)}" for p in pods)
    st = env.rs("web")["status"]
    assert st == {"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1}
    env.kubelet.make_ready(3)
    await env.driver.settle()
    st = env.rs("web")["status"]
    assert (st["readyReplicas"], st["availableReplicas"]) == (3, 3)


async def test_creates_in_slow_start_batches():
    calls = {"n": 0}

    async def probe() -> None:
        calls["n"] += 1
    ok, err = await rsutil.slow_start_batch(10, 1, probe)
    assert (ok, err, calls["n"]) == (10, None, 10)
    # A create that always fails costs one request, not ten.
    failures = {"n": 0}

    async def failing() -> None:
        failures["n"] += 1
        raise Forbidden(403, "Forbidden", "exceeded quota")
    ok, err = await rsutil.slow_start_batch(10, 1, failing)
    assert (ok, failures["n"]) == (0, 1) and isinstance(err, StatusError)
    # 1 ok then the batch of 2 fails: stops there.
    seq = iter([None, None, "x", "x", "x"])

    async def mixed() -> None:
        if next(seq):
            raise RuntimeError("boom")
    ok, err = await rsutil.slow_start_batch(10, 1, mixed)
    assert ok == 2 and err is not None


async def test_burst_replicas_caps_one_sync():
    env = Env(burst_replicas=4)
    env.api.create(REPLICASETS, replicaset("web", 10), "default")
    await env.rsc.sync("default/web")
    assert len(env.pods()) == 4
    await env.driver.settle()
    assert len(env.pods()) == 10


async def test_replicaset_reports_replica_failure_on_create_errors():
    env = Env()
    env.api.failures[("create", "pods")] = Forbidden(403, "Forbidden", 'pods "web-" is forbidden: exceeded quota')
    env.api.create(REPLICASETS, replicaset("web", 2), "default")
    await env.driver.settle()
    cond = rsutil.get_condition(env.rs("web")["status"], "ReplicaFailure")
    assert (cond["status"], cond["reason"]) == ("True", "FailedCreate")
    assert "exceeded quota" in cond["message"]
    assert env.rec.messages("FailedCreate")[0].startswith("Error creating: ")
    del env.api.failures[("create", "pods")]
    env.rsc.expectations = Expectations()  # expectations would otherwise wait 5 minutes
    env.rsc.queue.add("default/web")
    await env.driver.settle()
    assert len(env.pods()) == 2
    assert rsutil.get_condition(env.rs("web")["status"], "ReplicaFailure") is None


async def test_scale_down_deletes_not_ready_pods_first():
    env = Env()
    env.api.create(REPLICASETS, replicaset("web", 4), "default")
    await env.driver.settle()
    env.kubelet.make_ready(2)
    await env.driver.settle()
    ready = {meta.name(p) for p in env.pods() if p["status"].get("phase") == "Running"}
    env.scale("web", 2)
    await env.driver.settle()
    assert {meta.name(p) for p in env.pods()} == ready
    assert len(env.rec.messages("SuccessfulDelete")) == 2


def _pod(name: str, *, node: str = "n1", phase: str = "Running", ready_at: int | None = 0, created: int = 0,
         restarts: int = 0, cost: int | None = None) -> Obj:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    p: Obj = {"metadata": {"name": name, "uid": name,
                           "creationTimestamp": meta.rfc3339(base + dt.timedelta(seconds=created))},
              "spec": {"nodeName": node}, "status": {"phase": phase, "containerStatuses": [{"restartCount": restarts}]}}
    if cost is not None:
        p["metadata"]["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    if ready_at is not None:
        p["status"]["conditions"] = [{"type": "Ready", "status": "True",
                                      "lastTransitionTime": meta.rfc3339(base + dt.timedelta(seconds=ready_at))}]
    return p


def test_active_pods_ranking_for_deletion():
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    pods = [
        _pod("old-ready", ready_at=0, created=0),
        _pod("unscheduled", node="", phase="Pending", ready_at=None),
        _pod("pending", phase="Pending", ready_at=None),
        _pod("not-ready", ready_at=None),
        _pod("costly", ready_at=0, cost=100),
        _pod("restarty", ready_at=0, restarts=5),
        _pod("young-ready", ready_at=80000, created=80000),
    ]
    order = [meta.name(p) for p in rank_for_deletion(pods, [], now)]
    assert order[:3] == ["unscheduled", "pending", "not-ready"]
    assert order[3] == "young-ready"       # ready for less time (a smaller log2 bucket)
    assert order.index("restarty") < order.index("old-ready")
    assert order[-1] == "costly"            # higher deletion cost goes last


def test_pods_on_crowded_nodes_go_first():
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    a, b = _pod("a", node="busy"), _pod("b", node="quiet")
    related = [_pod("x1", node="busy"), _pod("x2", node="busy"), a, b]
    assert [meta.name(p) for p in rank_for_deletion([b, a], related, now)] == ["a", "b"]


async def test_replicaset_should_adopt_matching_pods_and_release_non_matching():
    env = Env()
    orphan = {"metadata": {"name": "orphan", "namespace": "default", "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "img"}]}}
    env.api.create(PODS, orphan, "default")
    env.api.create(REPLICASETS, replicaset("web", 1), "default")
    await env.driver.settle()
    pods = env.pods()
    assert [meta.name(p) for p in pods] == ["orphan"]
    assert meta.controller_ref(pods[0])["name"] == "web"
    # Release: relabel the pod; the RS lets go and makes a replacement.
    p = env.api.get_obj("pods", "default", "orphan")
    p["metadata"]["labels"] = {"app": "elsewhere"}
    env.api.update(PODS, p)
    await env.driver.settle()
    assert meta.controller_ref(env.api.get_obj("pods", "default", "orphan")) is None
    assert len(env.pods()) == 2


async def test_available_replicas_wait_for_min_ready_seconds():
    env = Env()
    env.api.create(REPLICASETS, replicaset("web", 2, min_ready=10), "default")
    await env.driver.settle()
    env.kubelet.make_ready(2)
    await env.driver.settle()
    st = env.rs("web")["status"]
    assert st.get("readyReplicas") == 2 and "availableReplicas" not in st
    assert "default/web" in env.rsc.queue._timers  # woken up when minReadySeconds has passed
    env.api.clock.advance(11)
    env.rsc.queue.add("default/web")
    await env.driver.settle()
    assert env.rs("web")["status"]["availableReplicas"] == 2


async def test_expectations_hold_back_a_second_create_round():
    env = Env()
    env.api.create(REPLICASETS, replicaset("web", 3), "default")
    env.rsc.expectations.expect_creations("default/web", 3)
    await env.rsc.sync("default/web")
    assert env.pods() == []  # still waiting for 3 creates it believes are in flight
    for _ in range(3):
        env.rsc.expectations.creation_observed("default/web")
    await env.rsc.sync("default/web")
    assert len(env.pods()) == 3
