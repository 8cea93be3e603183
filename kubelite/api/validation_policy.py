"""PodDisruptionBudget validation (upstream ``pkg/apis/policy/validation``), with upstream's
messages and field paths, and metav1's condition rules used by its status."""
from __future__ import annotations

import re
from typing import Any

from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    duplicate,
    go_int_or_string,
    go_label_selector,
    go_quote,
    index,
    invalid,
    is_qualified_name,
    name_is_dns_subdomain,
    nonnegative,
    not_supported,
    regex_error,
    required,
    too_long,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_workloads import _int_or_percent, _not_over_100

UNHEALTHY_POLICIES = ("AlwaysAllow", "IfHealthyBudget")  # sorted, as upstream's set lists them

_REASON_FMT = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?"
_REASON_RE = re.compile("^" + _REASON_FMT + "$")
_REASON_MSG = ("a condition reason must start with alphabetic character, optionally followed by a string of "
               "alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'")


def _go_ptr_intstr(v: Any) -> str:
    """How %#v shows an optional IntOrString inside the spec struct: nil or a pointer."""
    return "(*intstr.IntOrString)(nil)" if v is None else f"(*intstr.IntOrString)({go_int_or_string(v)})"


def _go_ptr_selector(sel: Any) -> str:
    """How %#v shows the optional selector inside the spec struct."""
    return "(*v1.LabelSelector)(nil)" if sel is None else f"(*v1.LabelSelector)({go_label_selector(sel)})"


def _go_spec(spec: dict) -> GoRepr:
    """%#v of the spec, as the both-set error prints it (pointer addresses shown as values)."""
    policy = spec.get("unhealthyPodEvictionPolicy")
    shown_policy = "(*policy.UnhealthyPodEvictionPolicyType)(nil)" if policy is None else \
        f"(*policy.UnhealthyPodEvictionPolicyType)({go_quote(str(policy))})"
    return GoRepr(f"policy.PodDisruptionBudgetSpec{{MinAvailable:{_go_ptr_intstr(spec.get('minAvailable'))}, "
                  f"Selector:{_go_ptr_selector(spec.get('selector'))}, "
                  f"MaxUnavailable:{_go_ptr_intstr(spec.get('maxUnavailable'))}, "
                  f"UnhealthyPodEvictionPolicy:{shown_policy}}}")


def validate_pdb_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidatePodDisruptionBudgetSpec."""
    errs: Errs = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid(path, _go_spec(spec), "minAvailable and maxUnavailable cannot be both set"))
    for f in ("minAvailable", "maxUnavailable"):
        v = spec.get(f)
        if v is not None:
            errs += _int_or_percent(v, child(path, f))
            errs += _not_over_100(v, child(path, f))
    errs += validate_label_selector(spec.get("selector"), child(path, "selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POLICIES:
        errs.append(not_supported(child(path, "unhealthyPodEvictionPolicy"), policy, UNHEALTHY_POLICIES))
    return errs


def validate_pdb(obj: dict, old: dict | None = None) -> Errs:
    """Create or update validation of a policy/v1 PodDisruptionBudget (the spec may change)."""
    errs = validate_object_meta(obj, True, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(obj, old)
    return errs + validate_pdb_spec(obj.get("spec") or {})


def validate_conditions(conds: Any, path: str) -> Errs:
    """metav1 ValidateConditions: each condition's type, status, reason, message and times."""
    errs: Errs = []
    seen: set[str] = set()
    for i, c in enumerate(conds or []):
        p = index(path, i)
        if not isinstance(c, dict):
            continue
        ctype = c.get("type") or ""
        errs += [invalid(child(p, "type"), ctype, m) for m in is_qualified_name(ctype)]
        if ctype in seen:
            errs.append(duplicate(child(p, "type"), ctype))
        seen.add(ctype)
        if c.get("status") not in ("True", "False", "Unknown"):
            errs.append(not_supported(child(p, "status"), c.get("status") or "", ("False", "True", "Unknown")))
        gen = c.get("observedGeneration")
        if isinstance(gen, int) and gen < 0:
            errs.append(invalid(child(p, "observedGeneration"), gen, "must be greater than or equal to zero"))
        if not c.get("lastTransitionTime"):
            errs.append(required(child(p, "lastTransitionTime"), "must be set"))
        reason = c.get("reason") or ""
        if not reason:
            errs.append(required(child(p, "reason"), "must be set"))
        else:
            if not _REASON_RE.match(reason):
                errs.append(invalid(child(p, "reason"), reason, regex_error(
                    _REASON_MSG, _REASON_FMT, "my_name", "MY_NAME", "MyName", "ReasonA,ReasonB", "ReasonA:ReasonB")))
            if len(reason) > 1024:
                errs.append(too_long(child(p, "reason"), 1024))
        if len(c.get("message") or "") > 32768:
            errs.append(too_long(child(p, "message"), 32768))
    return errs


def validate_pdb_status(obj: dict, old: dict) -> Errs:
    """ValidatePodDisruptionBudgetStatusUpdate (policy/v1 rules) plus the metadata update rules."""
    status = obj.get("status") or {}
    errs = validate_object_meta_update(obj, old)
    errs += validate_conditions(status.get("conditions"), "status.conditions")
    for f in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        errs += nonnegative(status.get(f, 0), child("status", f))
    return errs
