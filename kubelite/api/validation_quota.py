"""ResourceQuota, LimitRange and PriorityClass validation (upstream's
ValidateResourceQuota, ValidateLimitRange and ValidatePriorityClass messages)."""
from __future__ import annotations

from typing import Any

from kubelite.api.errors import Cause
from kubelite.api.validation_common import (
    child,
    forbidden,
    index,
    invalid,
    is_qualified_name,
    key,
    name_is_dns_subdomain,
    not_supported,
    required,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_pod import _quantity_errs, parse_quantity

Errs = list[Cause]
Obj = dict[str, Any]

_QUOTA_STANDARD = {"pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
                   "persistentvolumeclaims", "services.nodeports", "services.loadbalancers", "cpu", "memory",
                   "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
                   "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage"}
_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
           "CrossNamespacePodAffinity", "VolumeAttributesClass")
_SCOPE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
# The resources a scoped quota may limit (pods and their compute resources).
_SCOPED_RESOURCES = {"pods", "count/pods", "cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu",
                     "limits.memory"}
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
HIGHEST_USER_PRIORITY = 1000000000


def _meta(obj: Obj, old: Obj | None, namespaced: bool) -> Errs:
    return validate_object_meta(obj, namespaced, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(obj, old)


def _quota_resource_name(name: str, path: str) -> Errs:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and name not in _QUOTA_STANDARD and not name.startswith(("hugepages-", "requests.hugepages-")):
        errs.append(invalid(path, name, "must be a standard resource for quota"))
    return errs


def _resource_list(rl: Any, path: str, name_check: Any) -> Errs:
    errs: Errs = []
    for name, q in (rl or {}).items() if isinstance(rl, dict) else []:
        p = key(path, name)
        errs += name_check(name, p) + _quantity_errs(name if not name.startswith("count/") else "pods", q, p)
    return errs


def validate_resource_quota(q: Obj, old: Obj | None = None) -> Errs:
    """ValidateResourceQuota (create) / ValidateResourceQuotaUpdate."""
    errs = _meta(q, old, True)
    spec = q.get("spec") or {}
    errs += _resource_list(spec.get("hard"), "spec.hard", _quota_resource_name)
    errs += _quota_scopes(spec)
    return errs


def validate_resource_quota_status(q: Obj, old: Obj) -> Errs:
    """ValidateResourceQuotaStatusUpdate: status.hard and status.used resource lists."""
    errs = validate_object_meta_update(q, old)
    status = q.get("status") or {}
    errs += _resource_list(status.get("hard"), "status.hard", _quota_resource_name)
    errs += _resource_list(status.get("used"), "status.used", _quota_resource_name)
    return errs


def _quota_scopes(spec: Obj) -> Errs:
    errs: Errs = []
    scopes = list(spec.get("scopes") or [])
    for s in scopes:
        if s not in _SCOPES:
            errs.append(invalid("spec.scopes", s, "unsupported scope"))
    sel = (spec.get("scopeSelector") or {}).get("matchExpressions") or []
    names = set(scopes)
    for i, req in enumerate(sel):
        p = index("spec.scopeSelector.matchExpressions", i)
        name, op, values = req.get("scopeName", ""), req.get("operator", ""), req.get("values") or []
        if name not in _SCOPES:
            errs.append(not_supported(child(p, "scopeName"), name, _SCOPES))
        if op not in _SCOPE_OPERATORS:
            errs.append(not_supported(child(p, "operator"), op, _SCOPE_OPERATORS))
        elif op in ("In", "NotIn") and not values:
            errs.append(required(child(p, "values"),
                                 "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
        elif op in ("Exists", "DoesNotExist") and values:
            errs.append(invalid(child(p, "values"), values,
                                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
        if name in ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort") and op != "Exists":
            errs.append(invalid(child(p, "operator"), op,
                                "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, "
                                "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort or "
                                "ResourceQuotaScopeNotBestEffort"))
        names.add(name)
    if {"Terminating", "NotTerminating"} <= names or {"BestEffort", "NotBestEffort"} <= names:
        errs.append(invalid("spec.scopes", scopes, "conflicting scopes"))
    if names:
        for r in (spec.get("hard") or {}):
            if r not in _SCOPED_RESOURCES and not r.startswith(("requests.", "limits.")):
                errs.append(invalid(key("spec.hard", r), r, "unsupported scope applied to resource"))
    return errs


# --- LimitRange ------------------------------------------------------------------------

def validate_limit_range(lr: Obj, old: Obj | None = None) -> Errs:
    """ValidateLimitRange: types, resource names, and min <= defaultRequest <= default <= max."""
    errs = _meta(lr, old, True)
    limits = (lr.get("spec") or {}).get("limits")
    for i, item in enumerate(limits or []):
        p = index("spec.limits", i)
        typ = item.get("type", "")
        if not typ:
            errs.append(required(child(p, "type"), ""))
        if typ == "Pod":
            if item.get("default"):
                errs.append(forbidden(child(p, "default"), "may not be specified when `type` is 'Pod'"))
            if item.get("defaultRequest"):
                errs.append(forbidden(child(p, "defaultRequest"), "may not be specified when `type` is 'Pod'"))
        vals = {f: item.get(f) or {} for f in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")}
        for f, rl in vals.items():
            errs += _resource_list(rl, child(p, f), lambda n, path: [invalid(path, n, m) for m in is_qualified_name(n)])
        mx, mn, df, dr = (vals["max"], vals["min"], vals["default"], vals["defaultRequest"])
        for r in sorted(set(mx) | set(mn) | set(df) | set(dr)):
            qmax, qmin = parse_quantity(mx.get(r)), parse_quantity(mn.get(r))
            qdef, qreq = parse_quantity(df.get(r)), parse_quantity(dr.get(r))
            if qmin is not None and r in mn and qmax is not None and r in mx and qmin > qmax:
                errs.append(invalid(key(child(p, "min"), r), mn[r], f"min value {mn[r]} is greater than max value {mx[r]}"))
            if r in dr and qreq is not None:
                if r in mn and qmin is not None and qmin > qreq:
                    errs.append(invalid(key(child(p, "defaultRequest"), r), dr[r],
                                        f"min value {mn[r]} is greater than default request value {dr[r]}"))
                if r in df and qdef is not None and qreq > qdef:
                    errs.append(invalid(key(child(p, "defaultRequest"), r), dr[r],
                                        f"default request value {dr[r]} is greater than default limit value {df[r]}"))
                if r in mx and qmax is not None and qreq > qmax:
                    errs.append(invalid(key(child(p, "defaultRequest"), r), dr[r],
                                        f"default request value {dr[r]} is greater than max value {mx[r]}"))
            if r in df and qdef is not None:
                if r in mn and qmin is not None and qmin > qdef:
                    errs.append(invalid(key(child(p, "default"), r), df[r],
                                        f"min value {mn[r]} is greater than default value {df[r]}"))
                if r in mx and qmax is not None and qdef > qmax:
                    errs.append(invalid(key(child(p, "default"), r), df[r],
                                        f"default value {df[r]} is greater than max value {mx[r]}"))
        for r, v in vals["maxLimitRequestRatio"].items():
            ratio = parse_quantity(v)
            if ratio is not None and ratio < 1:
                errs.append(invalid(key(child(p, "maxLimitRequestRatio"), r), v,
                                    f"ratio {v} is less than 1"))
    return errs


# --- PriorityClass -----------------------------------------------------------------------

def validate_priority_class(pc: Obj, old: Obj | None = None) -> Errs:
    """ValidatePriorityClass / ValidatePriorityClassUpdate."""
    errs = _meta(pc, old, False)
    name = (pc.get("metadata") or {}).get("name") or ""
    value = pc.get("value", 0)
    if old is None:
        if name.startswith("system-"):
            reason = ""
            if name not in SYSTEM_PRIORITY_CLASSES:
                reason = f"{name} is not a known system priority class"
            elif value != SYSTEM_PRIORITY_CLASSES[name]:
                reason = f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_CLASSES[name]}"
            elif pc.get("globalDefault"):
                reason = f"globalDefault of {name} PriorityClass must be false"
            if reason:
                errs.append(forbidden("metadata.name", "priority class names with 'system-' prefix are reserved "
                                      f"for system use only. error: {reason}"))
        elif isinstance(value, int) and value > HIGHEST_USER_PRIORITY:
            errs.append(forbidden("value", f"maximum allowed value of a user defined priority is "
                                           f"{HIGHEST_USER_PRIORITY}"))
    else:
        if value != old.get("value", 0):
            errs.append(forbidden("value", "may not be changed in an update."))
        if pc.get("preemptionPolicy") != old.get("preemptionPolicy"):
            errs.append(invalid("preemptionPolicy", pc.get("preemptionPolicy"), "field is immutable"))
    policy = pc.get("preemptionPolicy")
    if policy is not None and policy not in ("PreemptLowerPriority", "Never"):
        errs.append(not_supported("preemptionPolicy", policy, ("Never", "PreemptLowerPriority")))
    return errs
