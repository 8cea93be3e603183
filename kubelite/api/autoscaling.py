"""HorizontalPodAutoscaler: defaults, validation, and the autoscaling/v1 ↔ v2 conversion.

Objects are stored in their ``autoscaling/v2`` form; ``autoscaling/v1`` is a view of the
same objects, as upstream serves it. v1 has only a CPU utilization target, so what v2 can
say and v1 cannot travels in annotations, under upstream's keys: the other metrics
(``autoscaling.alpha.kubernetes.io/metrics``), the current values of those
(``…/current-metrics``), the conditions (``…/conditions``) and the behavior
(``autoscaling.alpha.kubernetes.io/behavior``). Deviation: the metrics annotations hold
v2-shaped metric entries, not upstream's older v2beta1 shape.

Validation covers what users get wrong (messages and paths are upstream's): the scale
target reference, replica bounds, metric sources and targets, and behavior policies.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from kubelite.api import quantity
from kubelite.api.validation_common import (
    Errs,
    child,
    index,
    invalid,
    name_is_dns_subdomain,
    not_supported,
    required,
    validate_object_meta,
    validate_object_meta_update,
)

Obj = dict[str, Any]

DEFAULT_CPU_UTILIZATION = 80
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
_V1_ANNOTATIONS = (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION, CONDITIONS_ANNOTATION, BEHAVIOR_ANNOTATION)

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600


# -- defaults ---------------------------------------------------------------------------

def scale_up_rules(rules: Obj | None) -> Obj:
    """Upstream's scale-up rules with the missing parts filled in."""
    out = copy.deepcopy(rules) if rules else {}
    if out.get("stabilizationWindowSeconds") is None:
        out["stabilizationWindowSeconds"] = 0
    if not out.get("selectPolicy"):
        out["selectPolicy"] = "Max"
    if not out.get("policies"):
        out["policies"] = [{"type": "Pods", "value": 4, "periodSeconds": 15},
                           {"type": "Percent", "value": 100, "periodSeconds": 15}]
    return out


def scale_down_rules(rules: Obj | None) -> Obj:
    """Upstream's scale-down rules filled in; the window stays unset (the controller's flag decides)."""
    out = copy.deepcopy(rules) if rules else {}
    if not out.get("selectPolicy"):
        out["selectPolicy"] = "Max"
    if not out.get("policies"):
        out["policies"] = [{"type": "Percent", "value": 100, "periodSeconds": 15}]
    return out


def default_v2(obj: Obj) -> None:
    """SetDefaults for autoscaling/v2: minReplicas 1, CPU at 80% without metrics, behavior rules."""
    spec = obj.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = scale_up_rules(behavior.get("scaleUp"))
        behavior["scaleDown"] = scale_down_rules(behavior.get("scaleDown"))


def default_v1(obj: Obj) -> None:
    """SetDefaults for autoscaling/v1: minReplicas 1."""
    spec = obj.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


# -- conversion -------------------------------------------------------------------------

def _is_cpu_utilization(m: Obj) -> bool:
    res = m.get("resource") or {}
    target = res.get("target") or {}
    return (m.get("type") == "Resource" and res.get("name") == "cpu" and target.get("type") == "Utilization"
            and target.get("averageUtilization") is not None)


def _load(annotations: Obj, key: str) -> Any:
    raw = annotations.get(key)
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _dump(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


def v2_to_v1(obj: Obj) -> Obj:
    """A stored (v2) HorizontalPodAutoscaler as autoscaling/v1 serves it."""
    md = copy.deepcopy(obj.get("metadata") or {})
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ann = dict(md.get("annotations") or {})
    out_spec: Obj = {"scaleTargetRef": spec.get("scaleTargetRef") or {"kind": "", "name": ""}}
    if spec.get("minReplicas") is not None:
        out_spec["minReplicas"] = spec["minReplicas"]
    out_spec["maxReplicas"] = spec.get("maxReplicas", 0)
    others = []
    for m in spec.get("metrics") or []:
        if _is_cpu_utilization(m) and "targetCPUUtilizationPercentage" not in out_spec:
            out_spec["targetCPUUtilizationPercentage"] = m["resource"]["target"]["averageUtilization"]
        else:
            others.append(m)
    if others:
        ann[METRICS_ANNOTATION] = _dump(others)
    if spec.get("behavior"):
        ann[BEHAVIOR_ANNOTATION] = _dump(spec["behavior"])
    out_status: Obj = {}
    if status.get("observedGeneration") is not None:
        out_status["observedGeneration"] = status["observedGeneration"]
    if status.get("lastScaleTime"):
        out_status["lastScaleTime"] = status["lastScaleTime"]
    out_status["currentReplicas"] = status.get("currentReplicas", 0)
    out_status["desiredReplicas"] = status.get("desiredReplicas", 0)
    current_others = []
    for m in status.get("currentMetrics") or []:
        res = m.get("resource") or {}
        util = (res.get("current") or {}).get("averageUtilization")
        if m.get("type") == "Resource" and res.get("name") == "cpu" and util is not None \
                and "currentCPUUtilizationPercentage" not in out_status:
            out_status["currentCPUUtilizationPercentage"] = util
        else:
            current_others.append(m)
    if current_others:
        ann[CURRENT_METRICS_ANNOTATION] = _dump(current_others)
    if status.get("conditions"):
        ann[CONDITIONS_ANNOTATION] = _dump(status["conditions"])
    if ann:
        md["annotations"] = ann
    return {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1", "metadata": md,
            "spec": out_spec, "status": out_status}


def v1_to_v2(obj: Obj) -> Obj:
    """An autoscaling/v1 HorizontalPodAutoscaler in its stored (v2) form."""
    md = copy.deepcopy(obj.get("metadata") or {})
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ann = dict(md.get("annotations") or {})
    metrics: list[Obj] = []
    if spec.get("targetCPUUtilizationPercentage") is not None:
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": spec["targetCPUUtilizationPercentage"]}}})
    extra = _load(ann, METRICS_ANNOTATION)
    if isinstance(extra, list):
        metrics.extend(m for m in extra if isinstance(m, dict))
    out_spec: Obj = {"scaleTargetRef": spec.get("scaleTargetRef") or {"kind": "", "name": ""}}
    if spec.get("minReplicas") is not None:
        out_spec["minReplicas"] = spec["minReplicas"]
    out_spec["maxReplicas"] = spec.get("maxReplicas", 0)
    if metrics:
        out_spec["metrics"] = metrics
    behavior = _load(ann, BEHAVIOR_ANNOTATION)
    if isinstance(behavior, dict):
        out_spec["behavior"] = behavior
    out_status: Obj = {}
    if status.get("observedGeneration") is not None:
        out_status["observedGeneration"] = status["observedGeneration"]
    if status.get("lastScaleTime"):
        out_status["lastScaleTime"] = status["lastScaleTime"]
    out_status["currentReplicas"] = status.get("currentReplicas", 0)
    out_status["desiredReplicas"] = status.get("desiredReplicas", 0)
    current: list[Obj] = []
    if status.get("currentCPUUtilizationPercentage") is not None:
        current.append({"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": status["currentCPUUtilizationPercentage"]}}})
    extra_current = _load(ann, CURRENT_METRICS_ANNOTATION)
    if isinstance(extra_current, list):
        current.extend(m for m in extra_current if isinstance(m, dict))
    if current:
        out_status["currentMetrics"] = current
    conditions = _load(ann, CONDITIONS_ANNOTATION)
    if isinstance(conditions, list):
        out_status["conditions"] = conditions
    for k in _V1_ANNOTATIONS:
        ann.pop(k, None)
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    out = {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2", "metadata": md,
           "spec": out_spec, "status": out_status}
    default_v2(out)
    return out


# -- validation -------------------------------------------------------------------------

def _validate_ref(ref: Any, path: str) -> Errs:
    errs: Errs = []
    if not isinstance(ref, dict):
        return [required(path, "")]
    kind, name = ref.get("kind") or "", ref.get("name") or ""
    if not kind:
        errs.append(required(child(path, "kind"), ""))
    elif "/" in kind or "%" in kind:
        errs.append(invalid(child(path, "kind"), kind, "may not contain '/' or '%'"))
    if not name:
        errs.append(required(child(path, "name"), ""))
    elif "/" in name or "%" in name:
        errs.append(invalid(child(path, "name"), name, "may not contain '/' or '%'"))
    return errs


def _validate_target(target: Any, path: str, *, utilization_ok: bool) -> Errs:
    if not isinstance(target, dict):
        return [required(path, "must specify a metric target")]
    errs: Errs = []
    ttype = target.get("type") or ""
    if not ttype:
        errs.append(required(child(path, "type"), "must specify a metric target type"))
    elif ttype not in ("Utilization", "Value", "AverageValue"):
        errs.append(not_supported(child(path, "type"), ttype, ["AverageValue", "Utilization", "Value"]))
    util = target.get("averageUtilization")
    if util is not None and (not isinstance(util, int) or util < 1):
        errs.append(invalid(child(path, "averageUtilization"), util, "must be greater than 0"))
    for f in ("value", "averageValue"):
        v = target.get(f)
        if v is not None:
            try:
                if quantity.parse(v) <= 0:
                    errs.append(invalid(child(path, f), v, "must be positive"))
            except ValueError:
                errs.append(invalid(child(path, f), v, "must be a quantity"))
    if ttype == "Utilization" and util is None:
        errs.append(required(child(path, "averageUtilization"), "must set averageUtilization when type is Utilization"))
    if ttype == "Utilization" and not utilization_ok:
        errs.append(not_supported(child(path, "type"), ttype, ["AverageValue", "Value"]))
    if ttype == "AverageValue" and target.get("averageValue") is None:
        errs.append(required(child(path, "averageValue"), "must set averageValue when type is AverageValue"))
    if ttype == "Value" and target.get("value") is None:
        errs.append(required(child(path, "value"), "must set value when type is Value"))
    return errs


_SOURCES = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods", "Object": "object",
            "External": "external"}


def _validate_metric(m: Any, path: str) -> Errs:
    if not isinstance(m, dict):
        return [required(path, "")]
    mtype = m.get("type") or ""
    if mtype not in _SOURCES:
        if not mtype:
            return [required(child(path, "type"), "must specify a metric source type")]
        return [not_supported(child(path, "type"), mtype, sorted(_SOURCES))]
    field = _SOURCES[mtype]
    present = [f for f in _SOURCES.values() if m.get(f) is not None]
    errs: Errs = []
    if present != [field]:
        if field not in present:
            errs.append(required(child(path, field), "must populate information for the given metric source"))
        for f in present:
            if f != field:
                errs.append(invalid(child(path, f), "", "must populate the given metric source only"))
        return errs
    src = m[field]
    p = child(path, field)
    if mtype in ("Resource", "ContainerResource"):
        if not src.get("name"):
            errs.append(required(child(p, "name"), "must specify a resource name"))
        if mtype == "ContainerResource" and not src.get("container"):
            errs.append(required(child(p, "container"), "must specify a container"))
        errs += _validate_target(src.get("target"), child(p, "target"), utilization_ok=True)
        if (src.get("target") or {}).get("type") == "Value":
            errs.append(not_supported(child(p, "target", "type"), "Value", ["AverageValue", "Utilization"]))
    else:
        metric = src.get("metric")
        if not isinstance(metric, dict) or not metric.get("name"):
            errs.append(required(child(p, "metric", "name"), "must specify a metric name"))
        errs += _validate_target(src.get("target"), child(p, "target"), utilization_ok=False)
    return errs


def _validate_rules(rules: Any, path: str) -> Errs:
    if not isinstance(rules, dict):
        return []
    errs: Errs = []
    sel = rules.get("selectPolicy")
    if sel is not None and sel not in ("Max", "Min", "Disabled"):
        errs.append(not_supported(child(path, "selectPolicy"), sel, ["Disabled", "Max", "Min"]))
    win = rules.get("stabilizationWindowSeconds")
    if win is not None and (win < 0 or win > MAX_STABILIZATION_WINDOW_SECONDS):
        msg = "must be greater than or equal to zero" if win < 0 else \
            f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"
        errs.append(invalid(child(path, "stabilizationWindowSeconds"), win, msg))
    policies = rules.get("policies")
    if policies is not None and len(policies) == 0:
        errs.append(required(child(path, "policies"), "must specify at least one Policy"))
    for i, pol in enumerate(policies or []):
        pp = index(child(path, "policies"), i)
        ptype = pol.get("type")
        if ptype not in ("Pods", "Percent"):
            errs.append(not_supported(child(pp, "type"), ptype or "", ["Percent", "Pods"]))
        if not isinstance(pol.get("value"), int) or pol["value"] <= 0:
            errs.append(invalid(child(pp, "value"), pol.get("value"), "must be greater than zero"))
        period = pol.get("periodSeconds")
        if not isinstance(period, int) or period <= 0:
            errs.append(invalid(child(pp, "periodSeconds"), period, "must be greater than zero"))
        elif period > MAX_PERIOD_SECONDS:
            errs.append(invalid(child(pp, "periodSeconds"), period,
                                f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return errs


def _validate_spec(spec: Obj) -> Errs:
    errs: Errs = []
    mn, mx = spec.get("minReplicas"), spec.get("maxReplicas")
    if mn is not None and isinstance(mn, int) and mn < 1:
        errs.append(invalid("spec.minReplicas", mn, "must be greater than or equal to 1"))
    if not isinstance(mx, int) or mx < 1:
        errs.append(invalid("spec.maxReplicas", mx if mx is not None else 0, "must be greater than 0"))
    elif isinstance(mn, int) and mx < mn:
        errs.append(invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
    errs += _validate_ref(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    for i, m in enumerate(spec.get("metrics") or []):
        errs += _validate_metric(m, index("spec.metrics", i))
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        errs += _validate_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp")
        errs += _validate_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown")
    return errs


def _as_v2(obj: Obj, api_version: str) -> Obj:
    return v1_to_v2(obj) if api_version == "autoscaling/v1" else obj


def validate_hpa(obj: Obj, old: Obj | None, api_version: str) -> Errs:
    """Create/update validation of a HorizontalPodAutoscaler (either version)."""
    errs = validate_object_meta(obj, True, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(obj, old)
    return errs + _validate_spec(_as_v2(obj, api_version).get("spec") or {})


def validate_hpa_status(obj: Obj, old: Obj) -> Errs:
    """Status updates: metadata rules, and non-negative replica counts."""
    errs = validate_object_meta_update(obj, old)
    status = obj.get("status") or {}
    for f in ("currentReplicas", "desiredReplicas"):
        v = status.get(f)
        if isinstance(v, int) and v < 0:
            errs.append(invalid(child("status", f), v, "must be greater than or equal to 0"))
    return errs
