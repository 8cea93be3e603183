"""The horizontal pod autoscaler controller (upstream's podautoscaler.HorizontalController).

Every sync period each HorizontalPodAutoscaler is evaluated: read the target's ``scale``
subresource, compute a proposal per metric from ``metrics.k8s.io`` PodMetrics and the
target's pods (``replicas.py``), take the largest, stabilize and rate-limit it
(``normalize.py``), write the new count through ``scale``, and record status: current
and desired replicas, current metric values, and the AbleToScale / ScalingActive /
ScalingLimited conditions with upstream's reasons. Only resource metrics (Resource and
ContainerResource) are computed; Pods, Object and External metrics need a custom metrics
API kubelite does not serve, and count as invalid metrics, as upstream does when it
cannot fetch them.
"""
from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubelite.api import meta, quantity
from kubelite.api.resources import HORIZONTALPODAUTOSCALERS, PODMETRICS, PODS, by_kind
from kubelite.api.selectors import parse_label_selector
from kubelite.client.errors import Conflict, NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers.podautoscaler import normalize as norm
from kubelite.controllers.podautoscaler import replicas as calc

log = logging.getLogger(__name__)
Obj = dict[str, Any]

# kube-controller-manager's flags; server.py may change the period before controllers start.
SYNC_PERIOD = 15.0
DOWNSCALE_STABILIZATION = dt.timedelta(minutes=5)
TOLERANCE = calc.DEFAULT_TOLERANCE


def configure(*, sync_period: float | None = None) -> None:
    """Set the evaluation period (``--horizontal-pod-autoscaler-sync-period``)."""
    global SYNC_PERIOD
    if sync_period is not None and sync_period > 0:
        SYNC_PERIOD = sync_period


class MetricError(Exception):
    """A metric could not be evaluated: the condition reason and message to report."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Proposal:
    """What one metric asks for, its status entry, and how it is named in messages."""

    replicas: int
    status: Obj
    name: str
    timestamp: dt.datetime | None


def set_condition(status: Obj, type_: str, value: str, reason: str, message: str, now: str) -> None:
    """Set one condition, moving lastTransitionTime only when its status changes."""
    conds: list[Obj] = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == type_:
            if c.get("status") != value:
                c["lastTransitionTime"] = now
            c.update(status=value, reason=reason, message=message)
            return
    conds.append({"type": type_, "status": value, "lastTransitionTime": now, "reason": reason, "message": message})


def _milli_quantity(milli: int) -> str:
    """resource.NewMilliQuantity(v, DecimalSI).String()."""
    if milli % 1000 == 0:
        return str(milli // 1000)
    return f"{milli}m"


def _value_quantity(value: int) -> str:
    """resource.NewQuantity(v, DecimalSI).String() for a plain count of bytes."""
    for suffix, scale in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if value and value % scale == 0:
            return f"{value // scale}{suffix}"
    return str(value)


class HorizontalPodAutoscalerController:
    """Scales targets of HorizontalPodAutoscalers from resource metrics."""

    name = "horizontal-pod-autoscaler"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 recorder: Recorder | None = None, now: Callable[[], dt.datetime] = meta.now,
                 sync_period: float | None = None, downscale_window: dt.timedelta | None = None):
        self.client = client
        self.hpas = client.resource(HORIZONTALPODAUTOSCALERS)
        self.metrics = client.resource(PODMETRICS)
        self.hpa_informer = factory.informer(HORIZONTALPODAUTOSCALERS)
        self.pod_informer = factory.informer(PODS)
        self.recorder: Recorder = recorder or EventRecorder(client, "horizontal-pod-autoscaler")
        self.now = now
        self.workers = workers
        self.sync_period = sync_period if sync_period is not None else SYNC_PERIOD
        self.downscale_window = downscale_window if downscale_window is not None else DOWNSCALE_STABILIZATION
        self.queue = WorkQueue("horizontalpodautoscaler")
        self.history: dict[str, norm.History] = {}
        # Status writes (our own included) do not trigger a sync: each HPA is looked at once
        # per period, as upstream's fixed-interval rate limiter does; a spec change is at once.
        self.hpa_informer.add_handler(self._enqueue, self._updated, self._forget)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, wait for their first list, run workers until ``stop``."""
        for inf in (self.hpa_informer, self.pod_informer):
            inf.start()
        await asyncio.gather(self.hpa_informer.wait_synced(), self.pod_informer.wait_synced())
        await process_until(self.queue, self.sync, stop, self.workers)

    def _enqueue(self, hpa: Obj) -> None:
        self.queue.add(meta.key(hpa))

    def _updated(self, old: Obj, cur: Obj) -> None:
        if old.get("spec") != cur.get("spec"):
            self.queue.add(meta.key(cur))

    def _forget(self, hpa: Obj) -> None:
        self.history.pop(meta.key(hpa), None)

    async def sync(self, key: str) -> None:
        """Evaluate one HPA now, and again one sync period later while it exists."""
        cached = self.hpa_informer.get(key)
        if cached is None:
            self.history.pop(key, None)
            return
        try:
            await self.reconcile(copy.deepcopy(cached))
        finally:
            self.queue.add_after(key, self.sync_period)

    # -- one evaluation ---------------------------------------------------------------
    async def reconcile(self, hpa: Obj) -> None:
        """reconcileAutoscaler: scale the target if the metrics ask for it; write status."""
        key, ns = meta.key(hpa), meta.namespace(hpa)
        old_status = copy.deepcopy(hpa.get("status") or {})
        status = hpa.setdefault("status", {})
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        now_dt = self.now()
        now = meta.rfc3339(now_dt)
        reference = f"{ref.get('kind', '')}/{ns}/{ref.get('name', '')}"
        try:
            info, scale = await self._get_scale(ref, ns)
        except MetricError as e:
            set_condition(status, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {e.message}", now)
            self.recorder.event(hpa, "Warning", "FailedGetScale", e.message)
            await self._write_status(hpa, old_status)
            return
        set_condition(status, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", now)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        history = self.history.get(key)
        if history is None:
            history = self.history[key] = norm.History([norm.Timestamped(current, now_dt)])
        raw_min = spec.get("minReplicas")
        min_replicas = int(raw_min) if raw_min is not None else 1
        max_replicas = int(spec.get("maxReplicas") or 0)
        metric_statuses: list[Obj] = list(status.get("currentMetrics") or [])
        rescale_reason = ""
        if current == 0 and min_replicas != 0:
            desired = 0
            rescale = False
            set_condition(status, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", now)
        elif current > max_replicas:
            rescale_reason, desired, rescale = "Current number of replicas above Spec.MaxReplicas", max_replicas, True
        elif current < min_replicas:
            rescale_reason, desired, rescale = "Current number of replicas below Spec.MinReplicas", min_replicas, True
        else:
            selector = (scale.get("status") or {}).get("selector") or ""
            proposal, metric_name, metric_statuses, error = await self._replicas_for_metrics(
                hpa, status, current, selector, now_dt, now)
            if proposal < 0:
                status["currentMetrics"] = metric_statuses or None
                status["currentReplicas"] = int((scale.get("status") or {}).get("replicas") or 0)
                status["desiredReplicas"] = current
                await self._write_status(hpa, old_status)
                if error:
                    log.info("hpa %s: %s", key, error)
                    self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas", error)
                return
            behavior = spec.get("behavior")
            if behavior is None:
                decision = norm.normalize(history, current, proposal, min_replicas, max_replicas, now_dt,
                                          self.downscale_window)
            else:
                decision = norm.normalize_with_behavior(history, current, proposal, min_replicas, max_replicas,
                                                        behavior, now_dt, self.downscale_window)
            set_condition(status, "AbleToScale", "True", *decision.able, now)
            set_condition(status, "ScalingLimited", "True" if decision.limited else "False", *decision.limit, now)
            desired = decision.replicas
            rescale_reason = f"{metric_name} above target" if desired > current else "All metrics below target"
            rescale = desired != current
        if rescale:
            try:
                scale["spec"]["replicas"] = desired
                await self.client.resource(info).update(scale, subresource="scale")
            except StatusError as e:
                set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {e}", now)
                self.recorder.event(hpa, "Warning", "FailedRescale",
                                    f"New size: {desired}; reason: {rescale_reason}; error: {e}")
                await self._write_status(hpa, old_status)
                return
            set_condition(status, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", now)
            self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
            norm.record_scale(history, spec.get("behavior"), current, desired, now_dt)
            log.info("hpa %s: scaled %s from %d to %d (%s)", key, reference, current, desired, rescale_reason)
            status["lastScaleTime"] = now
        else:
            desired = current
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        if metric_statuses:
            status["currentMetrics"] = metric_statuses
        else:
            status.pop("currentMetrics", None)
        await self._write_status(hpa, old_status)

    async def _get_scale(self, ref: Obj, ns: str) -> tuple[Any, Obj]:
        """The target's resource and its Scale; MetricError when either cannot be had."""
        api_version, kind, name = ref.get("apiVersion") or "", ref.get("kind") or "", ref.get("name") or ""
        info = by_kind(api_version, kind)
        if info is None or info.subresource("scale") is None:
            raise MetricError("FailedGetScale", f'no matches for kind "{kind}" in group "{api_version.split("/")[0]}"'
                              if "/" in api_version else f'no matches for kind "{kind}" in version "{api_version}"')
        try:
            return info, await self.client.resource(info).get_subresource(name, ns, "scale")
        except StatusError as e:
            raise MetricError("FailedGetScale", str(e)) from None

    async def _replicas_for_metrics(self, hpa: Obj, status: Obj, current: int, selector: str, now_dt: dt.datetime,
                                    now: str) -> tuple[int, str, list[Obj], str]:
        """computeReplicasForMetrics: the largest proposal over valid metrics, or -1."""
        spec = hpa.get("spec") or {}
        metrics = spec.get("metrics") or [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
        if not selector:
            msg = "selector is required"
            set_condition(status, "ScalingActive", "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector", now)
            self.recorder.event(hpa, "Warning", "SelectorRequired", msg)
            return -1, "", [], msg
        try:
            sel = parse_label_selector(selector)
        except StatusError as e:
            set_condition(status, "ScalingActive", "False", "InvalidSelector",
                          f"the HPA target's scale has an invalid selector: {e}", now)
            self.recorder.event(hpa, "Warning", "InvalidSelector", str(e))
            return -1, "", [], str(e)
        ns = meta.namespace(hpa)
        pods = [p for p in self.pod_informer.list(ns) if sel.matches(meta.labels(p))]
        replicas, name, first_error = 0, "", ""
        invalid = 0
        statuses: list[Obj] = []
        invalid_reason = invalid_message = ""
        for m in metrics:
            try:
                p = await self._resource_proposal(m, current, ns, selector, pods, now_dt)
            except MetricError as e:
                invalid += 1
                if not first_error:
                    first_error, invalid_reason, invalid_message = e.message, e.reason, e.message
                    self.recorder.event(hpa, "Warning", e.reason, e.message)
                statuses.append({"type": ""})
                continue
            statuses.append(p.status)
            if replicas == 0 or p.replicas > replicas:
                replicas, name = p.replicas, p.name
        if invalid >= len(metrics) or (invalid > 0 and replicas < current):
            set_condition(status, "ScalingActive", "False", invalid_reason,
                          f"the HPA was unable to compute the replica count: {invalid_message}", now)
            return -1, "", statuses, (f"invalid metrics ({invalid} invalid out of {len(metrics)}), "
                                      f"first error is: {first_error}")
        set_condition(status, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {name}", now)
        return replicas, name, statuses, ""

    async def _resource_proposal(self, m: Obj, current: int, ns: str, selector: str, pods: list[Obj],
                                 now_dt: dt.datetime) -> Proposal:
        mtype = m.get("type")
        if mtype not in ("Resource", "ContainerResource"):
            source = {"Pods": "pods", "Object": "object", "External": "external"}.get(mtype or "", "")
            metric_name = ((m.get(source) or {}).get("metric") or {}).get("name", "") if source else ""
            raise MetricError(f"FailedGet{mtype}Metric" if source else "InvalidMetricSourceType",
                              f"unable to get metric {metric_name}: no custom metrics API (custom.metrics.k8s.io) "
                              "is served by kubelite" if source else f"unknown metric source type {mtype!r}")
        field = "resource" if mtype == "Resource" else "containerResource"
        src = m.get(field) or {}
        resource, container = src.get("name", ""), src.get("container", "")
        target = src.get("target") or {}
        reason = "FailedGetResourceMetric" if mtype == "Resource" else "FailedGetContainerResourceMetric"
        # Upstream's wording: "usage" for an AverageValue target, "utilization" otherwise.
        what = "usage" if target.get("averageValue") is not None else "utilization"
        try:
            values = await self._pod_values(ns, selector, resource, container, reason)
        except MetricError as e:
            raise MetricError(reason, f"failed to get {resource} {what}: {e.message}") from None
        try:
            if target.get("averageValue") is not None:
                goal = quantity.milli(target["averageValue"]) if resource == "cpu" else \
                    quantity.value(target["averageValue"])
                r = calc.raw_resource_replicas(current, goal, resource, pods, values, now_dt, tolerance=TOLERANCE)
                avg = _milli_quantity(r.raw_average) if resource == "cpu" else _value_quantity(r.raw_average)
                cur: Obj = {"averageValue": avg}
                label = f"{resource} resource" + (f" of container \"{container}\"" if container else "")
            else:
                util = target.get("averageUtilization")
                if util is None:
                    raise MetricError(reason, "invalid resource metric source: neither a utilization target "
                                              "nor a value target was set")
                r = calc.resource_replicas(current, int(util), resource, pods, values, now_dt, container=container,
                                           tolerance=TOLERANCE)
                avg = _milli_quantity(r.raw_average) if resource == "cpu" else _value_quantity(r.raw_average)
                cur = {"averageValue": avg, "averageUtilization": r.utilization}
                label = (f"{resource} resource utilization (percentage of request)" if not container else
                         f"{resource} container resource utilization (percentage of request)")
        except calc.ReplicaError as e:
            raise MetricError(reason, f"failed to get {resource} {what}: {e}") from None
        body: Obj = {"name": resource, "current": cur}
        if container:
            body = {"name": resource, "container": container, "current": cur}
        return Proposal(r.replicas, {"type": mtype, field: body}, label, r.timestamp)

    async def _pod_values(self, ns: str, selector: str, resource: str, container: str,
                          reason: str) -> dict[str, calc.PodMetric]:
        """Each pod's usage from PodMetrics (milli-CPU or bytes), summed over its (or one) containers."""
        try:
            lst = await self.metrics.list(ns, label_selector=selector)
        except StatusError as e:
            raise MetricError(reason, f"unable to get metrics for resource {resource}: unable to fetch metrics "
                                      f"from resource metrics API: {e}") from None
        items = lst.get("items") or []
        if not items:
            raise MetricError(reason, f"unable to get metrics for resource {resource}: no metrics returned from "
                                      "resource metrics API")
        out: dict[str, calc.PodMetric] = {}
        for pm in items:
            stamp = meta.parse_time(pm.get("timestamp")) or self.now()
            window = _duration(pm.get("window"))
            total, found = 0, False
            for c in pm.get("containers") or []:
                if container and c.get("name") != container:
                    continue
                usage = (c.get("usage") or {}).get(resource)
                if usage is None:
                    continue
                found = True
                total += quantity.milli(usage) if resource == "cpu" else quantity.value(usage)
            if found:
                out[meta.name(pm)] = calc.PodMetric(total, stamp, window)
        return out

    async def _write_status(self, hpa: Obj, old_status: Obj) -> None:
        """Write status when it changed; a conflict is left to the next sync."""
        status = hpa.get("status") or {}
        for k in [k for k, v in status.items() if v is None]:
            del status[k]
        if status == old_status:
            return
        try:
            await self.hpas.update_status(hpa)
        except (Conflict, NotFound):
            return


_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _duration(s: Any) -> dt.timedelta:
    """A metav1.Duration ("15s", "1m0.5s", "2.004s") as a timedelta (zero when unreadable)."""
    if not isinstance(s, str):
        return dt.timedelta(0)
    return dt.timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _GO_DURATION.findall(s)))
