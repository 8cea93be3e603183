"""Defaulting and validation of the rbac.authorization.k8s.io/v1 kinds.

Upstream's rules (``pkg/apis/rbac/validation``): role and binding names only have to be
usable as one URL path segment; a rule needs verbs, and either resources with API groups
or non-resource URLs (never both, and never URLs in a namespaced Role); a binding's
roleRef names a Role or ClusterRole of this API group and cannot change after creation;
subjects are Users, Groups or ServiceAccounts.  Messages and field paths are upstream's.
"""
from __future__ import annotations

from typing import Any

from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    go_quote,
    index,
    invalid,
    name_is_dns_subdomain,
    not_supported,
    required,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


# --- defaulting -----------------------------------------------------------------------------

def apply_rbac_defaults(kind: str, obj: Obj) -> None:
    """Subjects get their kind's API group; a binding's roleRef gets this API group."""
    if kind not in ("RoleBinding", "ClusterRoleBinding"):
        return
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    subjects = obj.get("subjects")
    for s in subjects if isinstance(subjects, list) else []:
        if isinstance(s, dict) and not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = GROUP


# --- names ----------------------------------------------------------------------------------

def path_segment_name(name: str, prefix: bool = False) -> list[str]:
    """IsValidPathSegmentName: not "." or "..", no "/" or "%"."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# --- rules ----------------------------------------------------------------------------------

def validate_policy_rule(rule: Any, namespaced: bool, path: str) -> Errs:
    """ValidatePolicyRule."""
    if not isinstance(rule, dict):
        return [invalid(path, rule, "must be an object")]
    errs: Errs = []
    if not rule.get("verbs"):
        errs.append(required(child(path, "verbs"), "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            errs.append(invalid(child(path, "nonResourceURLs"), urls, "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errs.append(invalid(child(path, "nonResourceURLs"), urls,
                                "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not rule.get("apiGroups"):
        errs.append(required(child(path, "apiGroups"), "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        errs.append(required(child(path, "resources"), "resource rules must supply at least one resource"))
    return errs


def _items(obj: Obj, key: str, path: str, errs: Errs) -> list[Any]:
    """A list field's items; anything but a list (or null) is an error."""
    v = obj.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        errs.append(invalid(path, v, "must be a list"))
        return []
    return v


def _validate_rules(obj: Obj, namespaced: bool) -> Errs:
    errs: Errs = []
    for i, rule in enumerate(_items(obj, "rules", "rules", errs)):
        errs += validate_policy_rule(rule, namespaced, index("rules", i))
    return errs


def _validate_aggregation(obj: Obj) -> Errs:
    agg = obj.get("aggregationRule")
    if agg is None:
        return []
    errs: Errs = []
    if not isinstance(agg, dict):
        return [invalid("aggregationRule", agg, "must be an object")]
    selectors = _items(agg, "clusterRoleSelectors", "aggregationRule.clusterRoleSelectors", errs)
    if errs:
        return errs
    if not selectors:
        return [required("aggregationRule.clusterRoleSelectors",
                         "at least one clusterRoleSelector required if aggregationRule is non-nil")]
    for i, sel in enumerate(selectors):
        errs += validate_label_selector(sel if isinstance(sel, dict) else {}, index("aggregationRule.clusterRoleSelectors", i))
    return errs


# --- bindings -------------------------------------------------------------------------------

def _go_role_ref(ref: Obj) -> GoRepr:
    return GoRepr(f"rbac.RoleRef{{APIGroup:{go_quote(str(ref.get('apiGroup') or ''))}, "
                  f"Kind:{go_quote(str(ref.get('kind') or ''))}, Name:{go_quote(str(ref.get('name') or ''))}}}")


def validate_subject(subject: Any, namespaced: bool, path: str) -> Errs:
    """ValidateRoleBindingSubject."""
    if not isinstance(subject, dict):
        return [invalid(path, subject, "must be an object")]
    errs: Errs = []
    name = subject.get("name") or ""
    if not name:
        errs.append(required(child(path, "name")))
    kind = subject.get("kind") or ""
    group = subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            errs += [invalid(child(path, "name"), name, m) for m in name_is_dns_subdomain(name, False)]
        if group:
            errs.append(not_supported(child(path, "apiGroup"), group, [""]))
        if not namespaced and not subject.get("namespace"):
            errs.append(required(child(path, "namespace")))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(not_supported(child(path, "apiGroup"), group, [GROUP]))
    else:
        errs.append(not_supported(child(path, "kind"), kind, ["ServiceAccount", "User", "Group"]))
    return errs


def _validate_binding(obj: Obj, namespaced: bool) -> Errs:
    errs: Errs = []
    ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
    assert isinstance(ref, dict)
    if (ref.get("apiGroup") or "") != GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if (ref.get("kind") or "") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    name = ref.get("name") or ""
    if not name:
        errs.append(required("roleRef.name"))
    else:
        errs += [invalid("roleRef.name", name, m) for m in path_segment_name(name)]
    for i, s in enumerate(_items(obj, "subjects", "subjects", errs)):
        errs += validate_subject(s, namespaced, index("subjects", i))
    return errs


# --- entry point ----------------------------------------------------------------------------

def validate_rbac(kind: str, obj: Obj, old: Obj | None) -> Errs:
    """Causes for an invalid Role, ClusterRole, RoleBinding or ClusterRoleBinding write."""
    namespaced = kind in ("Role", "RoleBinding")
    errs = validate_object_meta(obj, namespaced, path_segment_name)
    if old is not None:
        errs += validate_object_meta_update(obj, old)
    if kind in ("Role", "ClusterRole"):
        errs += _validate_rules(obj, namespaced)
        if kind == "ClusterRole":
            errs += _validate_aggregation(obj)
        return errs
    errs += _validate_binding(obj, namespaced)
    if old is not None:
        new_ref, old_ref = obj.get("roleRef") or {}, old.get("roleRef") or {}
        if new_ref != old_ref:
            errs.append(invalid("roleRef", _go_role_ref(new_ref if isinstance(new_ref, dict) else {}),
                                "cannot change roleRef"))
    return errs
