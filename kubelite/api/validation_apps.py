"""Deployment and ReplicaSet validation (upstream ``pkg/apis/apps/validation`` plus the
immutable-selector rule from ``pkg/registry/apps/*/strategy.go``)."""
from __future__ import annotations

from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.selectors import selector_from_dict
from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    forbidden,
    go_int_or_string,
    go_label_selector,
    go_string_map,
    immutable,
    invalid,
    is_valid_percent,
    name_is_dns_subdomain,
    nonnegative,
    not_supported,
    required,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_pod import validate_pod_template


def _int_or_percent(v: Any, path: str) -> Errs:
    if isinstance(v, str):
        return [invalid(path, go_int_or_string(v), m) for m in is_valid_percent(v)]
    if isinstance(v, int) and not isinstance(v, bool):
        return nonnegative(v, path)
    return [invalid(path, GoRepr(repr(v)), "must be an integer or percentage (e.g '5%%')")]


def _int_or_percent_value(v: Any) -> int:
    if isinstance(v, str):
        if is_valid_percent(v):
            return 0  # IntValue() of a non-numeric string is 0 upstream
        return int(v[:-1])
    return int(v or 0)


def _rolling_update(ru: dict, path: str) -> Errs:
    mu, ms = ru.get("maxUnavailable", 0), ru.get("maxSurge", 0)
    errs = _int_or_percent(mu, child(path, "maxUnavailable"))
    errs += _int_or_percent(ms, child(path, "maxSurge"))
    if _int_or_percent_value(mu) == 0 and _int_or_percent_value(ms) == 0:
        errs.append(invalid(child(path, "maxUnavailable"), go_int_or_string(mu), "may not be 0 when `maxSurge` is 0"))
    if isinstance(mu, str) and not is_valid_percent(mu) and int(mu[:-1]) > 100:
        errs.append(invalid(child(path, "maxUnavailable"), go_int_or_string(mu), "must not be greater than 100%"))
    return errs


def _strategy(strategy: dict, path: str) -> Errs:
    t = strategy.get("type", "")
    if t == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            return [forbidden(child(path, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if t == "RollingUpdate":
        if strategy.get("rollingUpdate") is None:
            return [required(child(path, "rollingUpdate"), "this should be defaulted and never be nil")]
        return _rolling_update(strategy["rollingUpdate"], child(path, "rollingUpdate"))
    ru = strategy.get("rollingUpdate")
    shown_ru = "(*apps.RollingUpdateDeployment)(nil)" if ru is None else "&apps.RollingUpdateDeployment{...}"
    shown = GoRepr(f'apps.DeploymentStrategy{{Type:"{t}", RollingUpdate:{shown_ru}}}')
    return [not_supported(path, shown, ("Recreate", "RollingUpdate"))]


def _selector_and_template(spec: dict, path: str) -> Errs:
    """The selector rules shared by Deployment and ReplicaSet specs."""
    errs: Errs = []
    sel = spec.get("selector")
    if sel is None:
        errs.append(required(child(path, "selector")))
    else:
        errs += validate_label_selector(sel, child(path, "selector"))
        if not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(invalid(child(path, "selector"), go_label_selector(sel), "empty selector is invalid for deployment"))
    try:
        selector = selector_from_dict(sel)
    except StatusError:
        errs.append(invalid(child(path, "selector"), go_label_selector(sel), "invalid label selector"))
        return errs
    tmpl = spec.get("template")
    tpath = child(path, "template")
    if tmpl is None:
        return errs + [required(tpath)]
    labels = (tmpl.get("metadata") or {}).get("labels")
    if not selector.empty() and not selector.matches(labels or {}):
        errs.append(invalid(child(tpath, "metadata", "labels"), GoRepr(go_string_map(labels)),
                            "`selector` does not match template `labels`"))
    errs += validate_pod_template(tmpl, tpath)
    tspec = tmpl.get("spec") or {}
    rp = tspec.get("restartPolicy") or ""
    if rp != "Always":
        errs.append(not_supported(child(tpath, "spec", "restartPolicy"), rp, ("Always",)))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(child(tpath, "spec", "activeDeadlineSeconds"),
                              "activeDeadlineSeconds in ReplicaSet is not Supported"))
    return errs


def validate_deployment_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidateDeploymentSpec."""
    errs = nonnegative(spec.get("replicas", 0), child(path, "replicas"))
    errs += _selector_and_template(spec, path)
    errs += _strategy(spec.get("strategy") or {}, child(path, "strategy"))
    mrs = spec.get("minReadySeconds", 0) or 0
    errs += nonnegative(mrs, child(path, "minReadySeconds"))
    if spec.get("revisionHistoryLimit") is not None:
        errs += nonnegative(spec["revisionHistoryLimit"], child(path, "revisionHistoryLimit"))
    if spec.get("rollbackTo") is not None:
        errs += nonnegative((spec["rollbackTo"] or {}).get("revision", 0), child(path, "rollback", "version"))
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        errs += nonnegative(pds, child(path, "progressDeadlineSeconds"))
        if pds <= mrs:
            errs.append(invalid(child(path, "progressDeadlineSeconds"), pds, "must be greater than minReadySeconds"))
    return errs


def validate_replicaset_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidateReplicaSetSpec."""
    errs = nonnegative(spec.get("replicas", 0), child(path, "replicas"))
    errs += nonnegative(spec.get("minReadySeconds", 0), child(path, "minReadySeconds"))
    return errs + _selector_and_template(spec, path)


def _immutable_selector(new: dict, old: dict) -> Errs:
    ns, os_ = (new.get("spec") or {}).get("selector"), (old.get("spec") or {}).get("selector")
    return immutable(ns, os_, "spec.selector", shown=go_label_selector(ns))


def validate_deployment(obj: dict, old: dict | None = None) -> Errs:
    """Create or update validation for a Deployment (apps/v1)."""
    if old is None:
        errs = validate_object_meta(obj, True, name_is_dns_subdomain)
        return errs + validate_deployment_spec(obj.get("spec") or {})
    errs = validate_object_meta_update(obj, old)
    errs += validate_deployment_spec(obj.get("spec") or {})
    return errs + _immutable_selector(obj, old)


def validate_replicaset(obj: dict, old: dict | None = None) -> Errs:
    """Create or update validation for a ReplicaSet (apps/v1)."""
    if old is None:
        errs = validate_object_meta(obj, True, name_is_dns_subdomain)
        return errs + validate_replicaset_spec(obj.get("spec") or {})
    errs = validate_object_meta_update(obj, old)
    errs += validate_replicaset_spec(obj.get("spec") or {})
    return errs + _immutable_selector(obj, old)


_COUNTERS = {
    "Deployment": ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                   "unavailableReplicas"),
    "ReplicaSet": ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"),
}


def validate_apps_status(kind: str, new: dict, old: dict) -> Errs:
    """ValidateDeploymentStatusUpdate / ValidateReplicaSetStatusUpdate."""
    errs = validate_object_meta_update(new, old)
    st = new.get("status") or {}
    for f in _COUNTERS[kind]:
        errs += nonnegative(st.get(f, 0), f"status.{f}")
    if st.get("collisionCount") is not None:
        errs += nonnegative(st["collisionCount"], "status.collisionCount")
    reps = st.get("replicas", 0)
    msg = "cannot be greater than status.replicas"
    bounded = ("updatedReplicas", "readyReplicas", "availableReplicas") if kind == "Deployment" else \
        ("fullyLabeledReplicas", "readyReplicas", "availableReplicas")
    for f in bounded:
        if st.get(f, 0) > reps:
            errs.append(invalid(f"status.{f}", st.get(f, 0), msg))
    if st.get("availableReplicas", 0) > st.get("readyReplicas", 0):
        errs.append(invalid("status.availableReplicas", st.get("availableReplicas", 0), "cannot be greater than readyReplicas"))
    if kind == "Deployment":
        oc = (old.get("status") or {}).get("collisionCount")
        nc = st.get("collisionCount")
        if oc is not None and (nc is None or nc < oc):
            errs.append(invalid("status.collisionCount", nc or 0, "cannot be decremented"))
    return errs
