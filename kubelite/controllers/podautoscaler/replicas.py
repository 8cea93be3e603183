"""The replica calculation for resource metrics, as upstream's replica_calculator.

Pure functions over plain data so they can be table-tested: the pods (API dicts), each
pod's measured value (milli-CPU or bytes, summed over its containers) with the metric's
time and window, and the target. The rules, in upstream's words reduced to ours:

- pods being deleted or Failed are ignored; Pending pods count as unready;
- a pod without a measurement is "missing";
- for CPU, a pod is unready while not Ready (or, within the CPU initialization period
  after start, when its measurement predates one window after its last readiness change);
- with no unready-on-scale-up and no missing pods, the answer is
  ``ceil(ratio × ready pods)`` unless the ratio is within the tolerance of 1;
- otherwise missing pods are counted as using their full request (or the target, if it
  is above 100 %) on a scale-down and nothing on a scale-up, unready pods as nothing on
  a scale-up, and the ratio is computed again; a result that would flip direction, or
  that is within tolerance, keeps the current count.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubelite.api import quantity

Obj = dict[str, Any]

DEFAULT_TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = dt.timedelta(minutes=5)
DELAY_OF_INITIAL_READINESS_STATUS = dt.timedelta(seconds=30)


class ReplicaError(Exception):
    """The replica count cannot be computed (the message is upstream's)."""


@dataclass(frozen=True)
class PodMetric:
    """One pod's measured value, and when and over how long it was measured."""

    value: int
    timestamp: dt.datetime
    window: dt.timedelta


@dataclass(frozen=True)
class ResourceResult:
    """A proposal: replicas, utilization (percent, or 0 for AverageValue) and raw average."""

    replicas: int
    utilization: int
    raw_average: int
    timestamp: dt.datetime | None


def _ts(s: Any) -> dt.datetime | None:
    if not isinstance(s, str) or not s:
        return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def group_pods(pods: Sequence[Obj], metrics: Mapping[str, PodMetric], resource: str, now: dt.datetime,
               cpu_init: dt.timedelta = CPU_INITIALIZATION_PERIOD,
               readiness_delay: dt.timedelta = DELAY_OF_INITIAL_READINESS_STATUS,
               ) -> tuple[int, set[str], set[str], set[str]]:
    """(ready count, unready names, missing names, ignored names), as upstream's groupPods."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        md, status = pod.get("metadata") or {}, pod.get("status") or {}
        name = md.get("name", "")
        if md.get("deletionTimestamp") or status.get("phase") == "Failed":
            ignored.add(name)
            continue
        if status.get("phase") == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            cond = _ready_condition(pod)
            start = _ts(status.get("startTime"))
            if cond is None or start is None:
                is_unready = True
            else:
                changed = _ts(cond.get("lastTransitionTime")) or start
                if start + cpu_init > now:
                    is_unready = cond.get("status") == "False" or metric.timestamp < changed + metric.window
                else:
                    is_unready = cond.get("status") == "False" and start + readiness_delay > changed
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def pod_requests(pods: Sequence[Obj], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request of ``resource`` (milli for CPU, units otherwise), summed over its containers."""
    out: dict[str, int] = {}
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "")
        total = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            if container and c.get("name") != container:
                continue
            req = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if req is None:
                raise ReplicaError(f"missing request for {resource} in container {c.get('name', '')} of Pod {name}")
            total += quantity.milli(req) if resource == "cpu" else quantity.value(req)
        out[name] = total
    return out


def utilization_ratio(metrics: Mapping[str, PodMetric], requests: Mapping[str, int],
                      target_utilization: int) -> tuple[float, int, int]:
    """(usage ratio, current utilization %, raw average) over pods with both a value and a request."""
    total = req_total = entries = 0
    for name, m in metrics.items():
        if name not in requests:
            continue
        total += m.value
        req_total += requests[name]
        entries += 1
    if req_total == 0:
        raise ReplicaError("no metrics returned matched known pods")
    current = int(total * 100 / req_total) if total >= 0 else -int(-total * 100 / req_total)
    return current / target_utilization, current, total // entries


def usage_ratio(metrics: Mapping[str, PodMetric], target: int) -> tuple[float, int]:
    """(usage ratio, average value) of plain values against an average target."""
    total = sum(m.value for m in metrics.values())
    avg = total // len(metrics) if metrics else 0
    return avg / target, avg


def _within(ratio: float, tolerance: float) -> bool:
    return abs(1.0 - ratio) <= tolerance


def _newest(metrics: Mapping[str, PodMetric]) -> dt.datetime | None:
    return max((m.timestamp for m in metrics.values()), default=None)


def resource_replicas(current_replicas: int, target_utilization: int, resource: str, pods: Sequence[Obj],
                      metrics: Mapping[str, PodMetric], now: dt.datetime, *, container: str = "",
                      tolerance: float = DEFAULT_TOLERANCE) -> ResourceResult:
    """GetResourceReplicas: the replica count for a Utilization target."""
    if not pods:
        raise ReplicaError("no pods returned by selector while calculating replica count")
    metrics = dict(metrics)
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    for name in ignored | unready:
        metrics.pop(name, None)
    if not metrics:
        raise ReplicaError("did not receive metrics for targeted pods (pods might be unready)")
    stamp = _newest(metrics)
    requests = pod_requests(pods, resource, container)
    ratio, util, raw = utilization_ratio(metrics, requests, target_utilization)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if _within(ratio, tolerance):
            return ResourceResult(current_replicas, util, raw, stamp)
        return ResourceResult(math.ceil(ratio * ready), util, raw, stamp)
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for name in missing:
                metrics[name] = PodMetric(requests.get(name, 0) * fallback // 100, now, dt.timedelta(0))
        elif ratio > 1.0:
            for name in missing:
                metrics[name] = PodMetric(0, now, dt.timedelta(0))
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = PodMetric(0, now, dt.timedelta(0))
    new_ratio, _, _ = utilization_ratio(metrics, requests, target_utilization)
    if _within(new_ratio, tolerance) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return ResourceResult(current_replicas, util, raw, stamp)
    new_replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (new_ratio > 1.0 and new_replicas < current_replicas):
        return ResourceResult(current_replicas, util, raw, stamp)
    return ResourceResult(new_replicas, util, raw, stamp)


def raw_resource_replicas(current_replicas: int, target_average: int, resource: str, pods: Sequence[Obj],
                          metrics: Mapping[str, PodMetric], now: dt.datetime, *,
                          tolerance: float = DEFAULT_TOLERANCE) -> ResourceResult:
    """GetRawResourceReplicas: the replica count for an AverageValue target (same units as the metrics)."""
    if not pods:
        raise ReplicaError("no pods returned by selector while calculating replica count")
    metrics = dict(metrics)
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    for name in ignored | unready:
        metrics.pop(name, None)
    if not metrics:
        raise ReplicaError("did not receive metrics for targeted pods (pods might be unready)")
    stamp = _newest(metrics)
    ratio, usage = usage_ratio(metrics, target_average)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if _within(ratio, tolerance):
            return ResourceResult(current_replicas, 0, usage, stamp)
        return ResourceResult(math.ceil(ratio * ready), 0, usage, stamp)
    if missing:
        fill = target_average if ratio < 1.0 else 0
        for name in missing:
            metrics[name] = PodMetric(fill, now, dt.timedelta(0))
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = PodMetric(0, now, dt.timedelta(0))
    new_ratio, _ = usage_ratio(metrics, target_average)
    if _within(new_ratio, tolerance) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return ResourceResult(current_replicas, 0, usage, stamp)
    new_replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (new_ratio > 1.0 and new_replicas < current_replicas):
        return ResourceResult(current_replicas, 0, usage, stamp)
    return ResourceResult(new_replicas, 0, usage, stamp)
