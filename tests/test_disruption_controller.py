"""Table tests of the disruption controller's arithmetic, after upstream's
pkg/controller/disruption/disruption_test.go cases, against tests/fakeapi.py."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubelite.api import meta
from kubelite.api.disruption import set_condition
from kubelite.api.resources import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
)
from kubelite.apiserver.eviction import budgets_for, can_ignore_budgets, decremented
from kubelite.controllers.disruption import (
    DisruptionController,
    build_disrupted_pod_map,
    count_healthy,
    disruptions_allowed,
    expected_and_desired,
    scaled_value,
    stale_disruption_wait,
)
from tests.fakeapi import Driver, FakeAPI, FakeResource, RecordingRecorder

Obj = dict[str, Any]
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


# --- pure arithmetic -------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "pods", "scale", "want"), [
    ({"minAvailable": 3}, 1, 0, (1, 3)),                 # TestNoSelector / TestUnavailable: the pod count
    ({"minAvailable": 3}, 4, 0, (4, 3)),
    ({"maxUnavailable": 1}, 1, 0, (0, 0)),               # TestIntegerMaxUnavailable: a naked pod expects nothing
    ({"maxUnavailable": 2}, 1, 7, (7, 5)),               # TestIntegerMaxUnavailableWithScaling
    ({"maxUnavailable": 2}, 1, 5, (5, 3)),
    ({"maxUnavailable": "30%"}, 1, 7, (7, 4)),           # TestPercentageMaxUnavailableWithScaling: 2.1 → 3
    ({"maxUnavailable": "30%"}, 1, 5, (5, 3)),           # 1.5 → 2
    ({"minAvailable": "28%"}, 1, 0, (0, 0)),             # TestNakedPod
    ({"minAvailable": "20%"}, 1, 10, (10, 2)),           # TestReplicaSet
    ({"minAvailable": "34%"}, 3, 3, (3, 2)),             # TestReplicationController / StatefulSet: 1.02 → 2
    ({"minAvailable": "1%"}, 2, 2, (2, 1)),              # TestMultipleControllers
    ({"maxUnavailable": 5}, 3, 3, (3, 0)),               # never below zero
    ({}, 2, 0, (0, 0)),
])
def test_expected_and_desired(spec, pods, scale, want):
    assert expected_and_desired(spec, pods, scale) == want


@pytest.mark.parametrize(("healthy", "desired", "expected", "allowed"), [
    (4, 3, 4, 1), (3, 3, 4, 0), (1, 3, 1, 0), (5, 0, 0, 0), (10, 2, 10, 8), (3, 2, 3, 1),
])
def test_disruptions_allowed(healthy, desired, expected, allowed):
    assert disruptions_allowed(healthy, desired, expected) == allowed


def test_scaled_value_rounds_percentages_up():
    assert [scaled_value(v, 7) for v in ("30%", "0%", "100%", 2)] == [3, 0, 7, 2]


def ready_pod(name: str, *, ready: bool = True, deleting: bool = False, owner: Obj | None = None,
              labels: dict | None = None) -> Obj:
    md: Obj = {"name": name, "namespace": "default", "labels": labels or {"foo": "bar"}}
    if deleting:
        md["deletionTimestamp"] = meta.rfc3339(NOW)
    if owner is not None:
        md["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta.name(owner),
                                  "uid": meta.uid(owner), "controller": True}]
    return {"metadata": md, "spec": {"containers": [{"name": "c", "image": "img"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_update_disrupted_pods_drops_expired_and_vanished_entries():
    # TestUpdateDisruptedPods: p1 recent, p2 past the two-minute deadline, p3 has no pod.
    recorded = {"p1": meta.rfc3339(NOW - dt.timedelta(seconds=10)),
                "p2": meta.rfc3339(NOW - dt.timedelta(minutes=2, seconds=1)),
                "p3": meta.rfc3339(NOW)}
    expired: list[str] = []
    got, recheck = build_disrupted_pod_map([ready_pod("p1"), ready_pod("p2")], recorded, NOW,
                                           lambda p: expired.append(meta.name(p)))
    assert got == {"p1": recorded["p1"]} and expired == ["p2"]
    assert recheck == NOW - dt.timedelta(seconds=10) + dt.timedelta(minutes=2)
    # A terminating pod's entry is done with.
    assert build_disrupted_pod_map([ready_pod("p1", deleting=True)], recorded, NOW)[0] == {}


def test_count_healthy_skips_unready_terminating_and_disrupted_pods():
    pods = [ready_pod("a"), ready_pod("b", ready=False), ready_pod("c", deleting=True), ready_pod("d")]
    assert count_healthy(pods, {}, NOW) == 2
    assert count_healthy(pods, {"d": meta.rfc3339(NOW)}, NOW) == 1


def test_stale_disruption_target_waits_two_minutes():
    pod = ready_pod("p")
    pod["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                                        "lastTransitionTime": meta.rfc3339(NOW - dt.timedelta(seconds=30))})
    assert stale_disruption_wait(pod, NOW) == dt.timedelta(seconds=90)
    assert stale_disruption_wait(pod, NOW + dt.timedelta(minutes=5)) == dt.timedelta(0)
    pod["status"]["phase"] = "Failed"
    assert stale_disruption_wait(pod, NOW) is None  # a terminal pod keeps its condition
    assert stale_disruption_wait(ready_pod("q"), NOW) is None


def test_set_condition_moves_the_transition_time_only_on_a_status_change():
    conds = set_condition([], {"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                               "message": ""}, NOW)
    later = NOW + dt.timedelta(minutes=1)
    same = set_condition(conds, {"type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed",
                                 "message": "boom"}, later)
    assert same[0]["lastTransitionTime"] == meta.rfc3339(NOW) and same[0]["reason"] == "SyncFailed"
    flipped = set_condition(same, {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                                   "message": ""}, later)
    assert flipped[0]["lastTransitionTime"] == meta.rfc3339(later)


# --- the eviction's budget check ------------------------------------------------------------

def budget(allowed: int, *, generation: int = 1, observed: int = 1, desired: int = 2, current: int = 3) -> Obj:
    return {"metadata": {"name": "foo", "namespace": "default", "generation": generation, "resourceVersion": "5"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"foo": "bar"}}},
            "status": {"disruptionsAllowed": allowed, "observedGeneration": observed, "desiredHealthy": desired,
                       "currentHealthy": current, "expectedPods": 3}}


def test_decrement_charges_the_budget_and_records_the_pod():
    out = decremented(budget(1), "p", meta.rfc3339(NOW), dry_run=False)
    assert out["status"]["disruptionsAllowed"] == 0 and out["status"]["disruptedPods"] == {"p": meta.rfc3339(NOW)}
    cond = out["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "False", "InsufficientPods")
    assert "disruptedPods" not in decremented(budget(2), "p", meta.rfc3339(NOW), dry_run=True)["status"]


def test_decrement_refuses_with_upstreams_answers():
    from kubelite.api.errors import StatusError
    with pytest.raises(StatusError) as e:
        decremented(budget(0), "p", meta.rfc3339(NOW), dry_run=False)
    assert e.value.code == 429 and e.value.details == {"causes": [{
        "reason": "DisruptionBudget", "message": "The disruption budget foo needs 2 healthy pods and has 3 currently"}]}
    with pytest.raises(StatusError) as e:
        decremented(budget(1, generation=2, observed=1), "p", meta.rfc3339(NOW), dry_run=False)
    assert e.value.code == 429 and e.value.details["retryAfterSeconds"] == 10
    assert "still being processed" in e.value.details["causes"][0]["message"]
    with pytest.raises(StatusError) as e:
        decremented(budget(-1), "p", meta.rfc3339(NOW), dry_run=False)
    assert e.value.code == 403


def test_budgets_for_and_budget_free_pods():
    everything = dict(budget(1), spec={"selector": {}})
    other = dict(budget(1), spec={"selector": {"matchLabels": {"x": "y"}}})
    assert budgets_for(ready_pod("p"), [everything, other]) == [everything]  # policy/v1: empty selects all
    assert can_ignore_budgets({"metadata": {}, "status": {"phase": "Pending"}})
    assert can_ignore_budgets(ready_pod("p", deleting=True))
    assert not can_ignore_budgets(ready_pod("p"))


# --- the controller against the fake API ------------------------------------------------------

class Env:
    def __init__(self) -> None:
        self.api = FakeAPI()
        self.rec = RecordingRecorder()
        self.dc = DisruptionController(self.api, self.api, recorder=self.rec, now=self.api.clock)
        self.driver = Driver(self.dc)

    def create(self, info, obj: Obj) -> Obj:
        out = self.api.create(info, obj, "default")
        if info is PODS:  # the fake API starts pods Pending: give them the status the test wrote
            out = self.api.update(PODS, dict(out, status=obj["status"]), "status")
        return out

    def status(self) -> Obj:
        return self.api.get_obj("poddisruptionbudgets", "default", "foo")["status"]

    async def settle(self) -> Obj:
        for pdb in self.api.items("poddisruptionbudgets", "default"):
            self.dc.queue.add(meta.key(pdb))
        await self.driver.settle()
        return self.status()


def pdb_obj(**spec: Any) -> Obj:
    return {"metadata": {"name": "foo"}, "spec": {"selector": {"matchLabels": {"foo": "bar"}}, **spec}}


def numbers(st: Obj) -> tuple[int, int, int, int]:
    return st["currentHealthy"], st["desiredHealthy"], st["expectedPods"], st["disruptionsAllowed"]


def owner(replicas: int, kind: str, api_version: str) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": kind.lower()},
            "spec": {"replicas": replicas}}


async def test_unavailable_pods_lower_the_allowed_disruptions():
    env = Env()
    env.create(PODDISRUPTIONBUDGETS, pdb_obj(minAvailable=3))
    pods = [env.create(PODS, ready_pod(f"p{i}")) for i in range(4)]
    assert numbers(await env.settle()) == (4, 3, 4, 1)
    cond = env.status()["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("True", "SufficientPods")
    unready = dict(pods[0], status={"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]})
    env.api.update(PODS, unready, "status")
    assert numbers(await env.settle()) == (3, 3, 4, 0)
    assert env.status()["conditions"][0]["reason"] == "InsufficientPods"


@pytest.mark.parametrize(("info", "kind", "api_version"), [
    (REPLICASETS, "ReplicaSet", "apps/v1"),
    (REPLICATIONCONTROLLERS, "ReplicationController", "v1"),
    (STATEFULSETS, "StatefulSet", "apps/v1"),
])
async def test_percentage_budgets_count_on_the_owners_scale(info, kind, api_version):
    env = Env()
    env.create(PODDISRUPTIONBUDGETS, pdb_obj(minAvailable="34%"))
    ctrl = env.create(info, owner(3, kind, api_version))
    env.create(PODS, ready_pod("p0", owner=ctrl))
    assert numbers(await env.settle()) == (1, 2, 3, 0)
    for i in (1, 2):
        env.create(PODS, ready_pod(f"p{i}", owner=ctrl))
    assert numbers(await env.settle()) == (3, 2, 3, 1)


async def test_a_deployments_scale_counts_through_its_replicaset():
    env = Env()
    env.create(PODDISRUPTIONBUDGETS, pdb_obj(maxUnavailable="30%"))
    deploy = env.create(DEPLOYMENTS, owner(7, "Deployment", "apps/v1"))
    rs = owner(7, "ReplicaSet", "apps/v1")
    rs["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta.name(deploy),
                                          "uid": meta.uid(deploy), "controller": True}]
    rs = env.create(REPLICASETS, rs)
    env.create(PODS, ready_pod("p0", owner=rs))
    assert numbers(await env.settle()) == (1, 4, 7, 0)


async def test_unmanaged_pods_expect_nothing_with_maxunavailable():
    env = Env()
    env.create(PODDISRUPTIONBUDGETS, pdb_obj(maxUnavailable=1))
    env.create(PODS, ready_pod("naked"))
    assert numbers(await env.settle()) == (1, 0, 0, 0)
    assert set(env.rec.messages("UnmanagedPods")) == {
        "Pods selected by this PodDisruptionBudget (selector: foo=bar) were found to be unmanaged. As a result, the "
        "status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for "
        'these pods please set ".spec.minAvailable" field of the PDB to an integer value.'}


async def test_a_sync_failure_fails_safe():
    env = Env()
    env.create(PODDISRUPTIONBUDGETS, pdb_obj(minAvailable="50%"))
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "gone", "uid": "no-such-uid"}}
    env.create(PODS, ready_pod("p0", owner=ghost))
    st = await env.settle()
    assert st["disruptionsAllowed"] == 0
    cond = st["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "SyncFailed",
                                                                 'found no controllers for pod "p0"')
    assert set(env.rec.messages("CalculateExpectedPodCountFailed")) == {
        'Failed to calculate the number of expected pods: found no controllers for pod "p0"'}


async def test_no_pods_is_reported():
    env = Env()
    env.create(PODDISRUPTIONBUDGETS, pdb_obj(minAvailable=1))
    assert numbers(await env.settle()) == (0, 1, 0, 0)
    assert set(env.rec.messages("NoPods")) == {"No matching pods found"}


class RecordingPods(FakeResource):
    """The pods client, remembering every patch (the fake API ignores status in patches)."""

    def __init__(self, api: FakeAPI) -> None:
        super().__init__(api, PODS)
        self.patches: list[tuple[Obj, Any]] = []

    async def patch(self, name: str, patch: Any, namespace: str = "", **kw: Any) -> Obj:
        self.patches.append((kw, patch))
        return self.api.get_obj("pods", namespace, name)


async def test_a_stale_disruption_target_condition_is_cleared():
    env = Env()
    pods = RecordingPods(env.api)
    env.dc.pod_client = pods
    pod = ready_pod("p0")
    pod["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                                        "lastTransitionTime": meta.rfc3339(env.api.clock() - dt.timedelta(seconds=30))})
    env.create(PODS, pod)
    await env.dc.sync_stale_pod_disruption("default/p0")
    assert pods.patches == []  # not stale yet: only two minutes after the condition was set
    env.api.clock.advance(120)
    await env.dc.sync_stale_pod_disruption("default/p0")
    (kw, body), = pods.patches
    assert (kw["patch_type"], kw["subresource"], kw["field_manager"], kw["force"]) == (
        "apply", "status", "DisruptionController", True)
    cond, = body["status"]["conditions"]
    assert (cond["type"], cond["status"]) == ("DisruptionTarget", "False")
