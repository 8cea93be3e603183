"""Table tests of the HPA replica calculation, after upstream's replica_calculator_test
(pkg/controller/podautoscaler): the same pods, levels, requests and targets, the same
expected replica counts, utilizations and raw averages."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from kubelite.controllers.podautoscaler import replicas as calc

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
COOL_START = NOW - dt.timedelta(minutes=10)   # past the CPU initialization period
HOT_START = NOW - dt.timedelta(seconds=30)    # inside it
WINDOW = dt.timedelta(seconds=30)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(i: int, request: str, *, ready: bool = True, phase: str = "Running", start: dt.datetime = COOL_START,
        ready_since: dt.datetime | None = None, deleting: bool = False, resource: str = "cpu") -> dict:
    md: dict = {"name": f"test-pod-{i}", "namespace": "default"}
    if deleting:
        md["deletionTimestamp"] = _iso(NOW)
    return {"metadata": md,
            "spec": {"containers": [{"name": "c", "resources": {"requests": {resource: request}}}]},
            "status": {"phase": phase, "startTime": _iso(start), "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": _iso(ready_since or start)}]}}


def metrics(levels: dict[int, int], stamp: dt.datetime = NOW) -> dict[str, calc.PodMetric]:
    return {f"test-pod-{i}": calc.PodMetric(v, stamp, WINDOW) for i, v in levels.items()}


@dataclass
class Case:
    current: int
    pods: list[dict]
    levels: dict[int, int]
    target: int
    expected: int
    utilization: int = 0
    raw: int = 0
    resource: str = "cpu"
    average_value: bool = False
    error: str = ""
    extra: dict = field(default_factory=dict)


CASES = {
    # TestReplicaCalcScaleUp
    "scale_up": Case(3, [pod(i, "1") for i in range(3)], {0: 300, 1: 500, 2: 700}, 30, 5, 50, 500),
    # TestReplicaCalcScaleUpUnreadyLessScale: the unready pod counts as 0 on a scale-up
    "scale_up_unready_less_scale": Case(3, [pod(0, "1", ready=False), pod(1, "1"), pod(2, "1")],
                                        {0: 300, 1: 500, 2: 700}, 30, 4, 60, 600),
    # TestReplicaCalcScaleUpHotCpuLessScale: a pod inside the CPU initialization period whose
    # sample predates a window after it became ready counts as unready
    "scale_up_hot_cpu_less_scale": Case(3, [pod(0, "1", start=HOT_START, ready_since=NOW - dt.timedelta(seconds=5)),
                                            pod(1, "1"), pod(2, "1")], {0: 300, 1: 500, 2: 700}, 30, 4, 60, 600),
    # TestReplicaCalcScaleUpUnreadyNoScale: zeroing the unready pods turns it into a scale-down: no change
    "scale_up_unready_no_scale": Case(3, [pod(0, "1"), pod(1, "1", ready=False), pod(2, "1", ready=False)],
                                      {0: 400, 1: 500, 2: 700}, 30, 3, 40, 400),
    # TestReplicaCalcScaleUpIgnoresFailedPods
    "scale_up_ignores_failed_pods": Case(2, [pod(0, "1"), pod(1, "1"), pod(2, "1", phase="Failed"),
                                             pod(3, "1", phase="Failed")],
                                         {0: 500, 1: 700, 2: 100, 3: 100}, 30, 4, 60, 600),
    # TestReplicaCalcScaleUpIgnoresDeletionPods
    "scale_up_ignores_deletion_pods": Case(2, [pod(0, "1"), pod(1, "1"), pod(2, "1", deleting=True),
                                               pod(3, "1", deleting=True)],
                                           {0: 500, 1: 700, 2: 100, 3: 100}, 30, 4, 60, 600),
    # TestReplicaCalcScaleDown
    "scale_down": Case(5, [pod(i, "1") for i in range(5)], {0: 100, 1: 300, 2: 500, 3: 250, 4: 250},
                       50, 3, 28, 280),
    # TestReplicaCalcScaleDownIncludeUnreadyPods: unready pods are left out of a scale-down
    "scale_down_include_unready_pods": Case(5, [pod(0, "1"), pod(1, "1"), pod(2, "1"), pod(3, "1", ready=False),
                                                pod(4, "1", ready=False)],
                                            {0: 100, 1: 300, 2: 500, 3: 250, 4: 250}, 50, 2, 30, 300),
    # TestReplicaCalcScaleDownIgnoresFailedPods
    "scale_down_ignores_failed_pods": Case(5, [pod(i, "1") for i in range(5)] +
                                           [pod(5, "1", phase="Failed"), pod(6, "1", phase="Failed")],
                                           {0: 100, 1: 300, 2: 500, 3: 250, 4: 250, 5: 10, 6: 10},
                                           50, 3, 28, 280),
    # TestReplicaCalcTolerance: 102% of target is within 10%
    "tolerance": Case(3, [pod(0, "0.9"), pod(1, "1.0"), pod(2, "1.1")], {0: 1010, 1: 1030, 2: 1020},
                      100, 3, 102, 1020),
    # TestReplicaCalcMissingMetricsNoChangeEq
    "missing_metrics_no_change_eq": Case(2, [pod(0, "1"), pod(1, "1")], {0: 1000}, 100, 2, 100, 1000),
    # TestReplicaCalcMissingMetricsScaleUp: the missing pod counts as 0 on a scale-up
    "missing_metrics_scale_up": Case(2, [pod(0, "1"), pod(1, "1")], {0: 2000}, 50, 4, 200, 2000),
    # TestReplicaCalcMissingMetricsScaleDown: missing pods count as using their whole request
    "missing_metrics_scale_down": Case(4, [pod(i, "1") for i in range(4)], {0: 100, 1: 100, 2: 100},
                                       50, 3, 10, 100),
    # Missing metrics would flip a scale-down into a scale-up: no change
    "missing_metrics_no_flip": Case(4, [pod(i, "1") for i in range(4)], {0: 400, 1: 95}, 50, 4, 24, 247),
    # A pending pod counts as unready: zeroed on a scale-up, which here cancels it (26% < 30%)
    "scale_up_pending_cancelled": Case(3, [pod(0, "1"), pod(1, "1"), pod(2, "1", phase="Pending")],
                                       {0: 300, 1: 500}, 30, 3, 40, 400),
    # ... and here only slows it: 1500m over 4 pods is 37% of 30% → ceil(1.23 × 4) = 5
    "scale_up_pending_less_scale": Case(3, [pod(0, "1"), pod(1, "1"), pod(2, "1"), pod(3, "1", phase="Pending")],
                                        {0: 300, 1: 500, 2: 700}, 30, 5, 50, 500),
    # Memory (no readiness rules for non-CPU resources)
    "memory_scale_up": Case(2, [pod(0, "100Mi", resource="memory", ready=False),
                                pod(1, "100Mi", resource="memory")],
                            {0: 150 * 2**20, 1: 150 * 2**20}, 50, 6, 150, 150 * 2**20, resource="memory"),
    # AverageValue (GetRawResourceReplicas): average 750m against 250m
    "average_value_scale_up": Case(2, [pod(0, "1"), pod(1, "1")], {0: 500, 1: 1000}, 250, 6, 0, 750,
                                   average_value=True),
    "average_value_within_tolerance": Case(3, [pod(i, "1") for i in range(3)], {0: 260, 1: 250, 2: 240},
                                           250, 3, 0, 250, average_value=True),
    "average_value_scale_down": Case(4, [pod(i, "1") for i in range(4)], {0: 100, 1: 100, 2: 100, 3: 100},
                                     200, 2, 0, 100, average_value=True),
    # TestReplicaCalcEmptyMetrics / all unready
    "no_metrics_for_ready_pods": Case(2, [pod(0, "1", ready=False), pod(1, "1", ready=False)], {0: 100, 1: 100},
                                      50, 0, error="did not receive metrics for targeted pods (pods might be unready)"),
    # TestReplicaCalcEmptyCPURequest
    "missing_request": Case(1, [{**pod(0, "1"), "spec": {"containers": [{"name": "c"}]}}], {0: 200}, 100, 0,
                            error="missing request for cpu in container c of Pod test-pod-0"),
    "no_pods": Case(1, [], {}, 100, 0,
                    error="no pods returned by selector while calculating replica count"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_replica_calculation(name: str) -> None:
    c = CASES[name]
    m = metrics(c.levels)
    if c.error:
        with pytest.raises(calc.ReplicaError) as e:
            calc.resource_replicas(c.current, c.target, c.resource, c.pods, m, NOW)
        assert str(e.value) == c.error
        return
    if c.average_value:
        r = calc.raw_resource_replicas(c.current, c.target, c.resource, c.pods, m, NOW)
    else:
        r = calc.resource_replicas(c.current, c.target, c.resource, c.pods, m, NOW)
    assert (r.replicas, r.utilization, r.raw_average) == (c.expected, c.utilization, c.raw)


def test_group_pods_cpu_readiness_rules() -> None:
    """groupPods: a pod past the initialization period that was never ready stays unready; one that
    became unready later is counted (its sample is trusted)."""
    never_ready = pod(0, "1", ready=False, start=COOL_START, ready_since=COOL_START + dt.timedelta(seconds=5))
    was_ready = pod(1, "1", ready=False, start=COOL_START, ready_since=COOL_START + dt.timedelta(minutes=2))
    ready, unready, missing, ignored = calc.group_pods([never_ready, was_ready], metrics({0: 1, 1: 1}), "cpu", NOW)
    assert (ready, unready, missing, ignored) == (1, {"test-pod-0"}, set(), set())


def test_group_pods_memory_ignores_readiness() -> None:
    ready, unready, _, _ = calc.group_pods([pod(0, "1", ready=False)], metrics({0: 1}), "memory", NOW)
    assert (ready, unready) == (1, set())
