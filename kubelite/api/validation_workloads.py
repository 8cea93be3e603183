"""StatefulSet, DaemonSet and ControllerRevision validation (upstream
``pkg/apis/apps/validation`` for these kinds, messages and field paths as upstream)."""
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
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_pod import validate_pod_template


def _int_or_percent(v: Any, path: str) -> Errs:
    """ValidatePositiveIntOrPercent."""
    if isinstance(v, str):
        return [invalid(path, go_int_or_string(v), m) for m in is_valid_percent(v)]
    if isinstance(v, int) and not isinstance(v, bool):
        return nonnegative(v, path)
    return [invalid(path, GoRepr(repr(v)), "must be an integer or percentage (e.g '5%%')")]


def _percent_or_int(v: Any) -> int:
    """getIntOrPercentValue: the number, ignoring a trailing %."""
    if isinstance(v, str):
        try:
            return int(v[:-1]) if v.endswith("%") else 0
        except ValueError:
            return 0
    return int(v or 0) if isinstance(v, int) else 0


def _not_over_100(v: Any, path: str) -> Errs:
    if isinstance(v, str) and not is_valid_percent(v) and _percent_or_int(v) > 100:
        return [invalid(path, go_int_or_string(v), "must not be greater than 100%")]
    return []


def _selector_and_template(spec: dict, path: str, kind: str, full_template: bool) -> Errs:
    """Selector present, non-empty, matching the template labels; the template's pod rules."""
    errs: Errs = []
    sel = spec.get("selector")
    if sel is None:
        errs.append(required(child(path, "selector")))
    else:
        errs += validate_label_selector(sel, child(path, "selector"))
        if not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(invalid(child(path, "selector"), go_label_selector(sel),
                                f"empty selector is invalid for {kind.lower()}"))
    tpath = child(path, "template")
    tmpl = spec.get("template")
    if tmpl is None:
        return errs + [required(tpath)]
    labels = (tmpl.get("metadata") or {}).get("labels")
    try:
        selector = selector_from_dict(sel)
        if not selector.empty() and not selector.matches(labels or {}):
            errs.append(invalid(child(tpath, "metadata", "labels"), GoRepr(go_string_map(labels)),
                                "`selector` does not match template `labels`"))
    except StatusError:
        errs.append(invalid(child(path, "selector"), go_label_selector(sel), "invalid label selector"))
    if full_template:
        errs += validate_pod_template(tmpl, tpath)
    else:
        # Upstream checks only the template's labels and annotations for a StatefulSet:
        # its volume mounts may name claim templates, which are not pod volumes yet.
        md = tmpl.get("metadata") or {}
        errs += validate_labels(md.get("labels"), child(tpath, "labels"))
        errs += validate_annotations(md.get("annotations"), child(tpath, "annotations"))
    tspec = tmpl.get("spec") or {}
    rp = tspec.get("restartPolicy") or ""
    if rp != "Always":
        errs.append(not_supported(child(tpath, "spec", "restartPolicy"), rp, ("Always",)))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(child(tpath, "spec", "activeDeadlineSeconds"),
                              f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


# --- StatefulSet -----------------------------------------------------------------------

def _sts_rolling_update(ru: dict, path: str) -> Errs:
    errs = nonnegative(ru.get("partition", 0), child(path, "partition"))
    mu = ru.get("maxUnavailable")
    if mu is not None:
        mpath = child(path, "maxUnavailable")
        errs += _int_or_percent(mu, mpath)
        if _percent_or_int(mu) == 0 and not (isinstance(mu, str) and is_valid_percent(mu)):
            errs.append(invalid(mpath, go_int_or_string(mu), "must be greater than 0"))
        errs += _not_over_100(mu, mpath)
    return errs


def _retention_policy(policy: dict | None, path: str) -> Errs:
    if policy is None:
        return []
    errs: Errs = []
    for f in ("whenDeleted", "whenScaled"):
        v = policy.get(f) or ""
        if v not in ("Retain", "Delete"):
            errs.append(not_supported(child(path, f), v, ("Retain", "Delete")))
    return errs


def validate_statefulset_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidateStatefulSetSpec."""
    errs: Errs = []
    pmp = spec.get("podManagementPolicy") or ""
    if pmp == "":
        errs.append(required(child(path, "podManagementPolicy")))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(invalid(child(path, "podManagementPolicy"), pmp, "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.get("updateStrategy") or {}
    spath = child(path, "updateStrategy")
    t = strategy.get("type") or ""
    ru = strategy.get("rollingUpdate")
    if t == "":
        errs.append(required(spath))
    elif t == "OnDelete":
        if ru is not None:
            errs.append(invalid(child(spath, "rollingUpdate"), GoRepr("&apps.RollingUpdateStatefulSetStrategy{...}"),
                                "only allowed for updateStrategy 'RollingUpdate'"))
    elif t == "RollingUpdate":
        if ru is not None:
            errs += _sts_rolling_update(ru, child(spath, "rollingUpdate"))
    else:
        errs.append(invalid(spath, GoRepr(f'apps.StatefulSetUpdateStrategy{{Type:"{t}"}}'),
                            "must be 'RollingUpdate' or 'OnDelete'"))
    errs += _retention_policy(spec.get("persistentVolumeClaimRetentionPolicy"),
                              child(path, "persistentVolumeClaimRetentionPolicy"))
    errs += nonnegative(spec.get("replicas", 0), child(path, "replicas"))
    if spec.get("ordinals") is not None:
        errs += nonnegative((spec["ordinals"] or {}).get("start", 0), child(path, "ordinals", "start"))
    errs += nonnegative(spec.get("minReadySeconds", 0) or 0, child(path, "minReadySeconds"))
    if spec.get("revisionHistoryLimit") is not None:
        errs += nonnegative(spec["revisionHistoryLimit"], child(path, "revisionHistoryLimit"))
    for i, pvc in enumerate(spec.get("volumeClaimTemplates") or []):
        name = ((pvc or {}).get("metadata") or {}).get("name") or ""
        if not name:
            errs.append(required(f"{child(path, 'volumeClaimTemplates')}[{i}].metadata.name",
                                 "name or generateName is required"))
    return errs + _selector_and_template(spec, path, "StatefulSet", full_template=False)


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def validate_statefulset(obj: dict, old: dict | None = None) -> Errs:
    """Create or update validation for a StatefulSet (apps/v1)."""
    spec = obj.get("spec") or {}
    if old is None:
        return validate_object_meta(obj, True, name_is_dns_subdomain) + validate_statefulset_spec(spec)
    errs = validate_object_meta_update(obj, old) + validate_statefulset_spec(spec)
    ospec = old.get("spec") or {}
    # Only the fields upstream lets change may differ; anything else is a forbidden edit.
    rest_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
    rest_old = {k: v for k, v in ospec.items() if k not in _STS_MUTABLE}
    if rest_new != rest_old:
        errs.append(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                      "'template', 'updateStrategy', 'revisionHistoryLimit', "
                                      "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
    return errs


# --- DaemonSet -------------------------------------------------------------------------

def _ds_strategy(strategy: dict, path: str) -> Errs:
    t = strategy.get("type") or ""
    if t == "OnDelete":
        return []
    if t == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            return [required(child(path, "rollingUpdate"))]
        rpath = child(path, "rollingUpdate")
        mu, ms = ru.get("maxUnavailable", 0), ru.get("maxSurge", 0)
        errs = _int_or_percent(mu, child(rpath, "maxUnavailable")) + _not_over_100(mu, child(rpath, "maxUnavailable"))
        errs += _int_or_percent(ms, child(rpath, "maxSurge")) + _not_over_100(ms, child(rpath, "maxSurge"))
        if _percent_or_int(mu) == 0 and _percent_or_int(ms) == 0:
            errs.append(invalid(child(rpath, "maxUnavailable"), go_int_or_string(mu),
                                "may not be 0 when `maxSurge` is 0"))
        return errs
    shown = GoRepr(f'apps.DaemonSetUpdateStrategy{{Type:"{t}"}}')
    return [not_supported(path, shown, ("RollingUpdate", "OnDelete"))]


def validate_daemonset_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidateDaemonSetSpec."""
    errs = _selector_and_template(spec, path, "DaemonSet", full_template=True)
    errs += nonnegative(spec.get("minReadySeconds", 0) or 0, child(path, "minReadySeconds"))
    errs += _ds_strategy(spec.get("updateStrategy") or {}, child(path, "updateStrategy"))
    if spec.get("revisionHistoryLimit") is not None:
        errs += nonnegative(spec["revisionHistoryLimit"], child(path, "revisionHistoryLimit"))
    return errs


def validate_daemonset(obj: dict, old: dict | None = None) -> Errs:
    """Create or update validation for a DaemonSet (apps/v1)."""
    spec = obj.get("spec") or {}
    if old is None:
        return validate_object_meta(obj, True, name_is_dns_subdomain) + validate_daemonset_spec(spec)
    errs = validate_object_meta_update(obj, old) + validate_daemonset_spec(spec)
    nsel, osel = spec.get("selector"), (old.get("spec") or {}).get("selector")
    return errs + immutable(nsel, osel, "spec.selector", shown=go_label_selector(nsel))


# --- ControllerRevision ----------------------------------------------------------------

def validate_controller_revision(obj: dict, old: dict | None = None) -> Errs:
    """ValidateControllerRevisionCreate / Update: data is required, then frozen."""
    if old is None:
        errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(obj, old)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    errs += nonnegative(obj.get("revision", 0), "revision")
    if old is not None and obj.get("data") != old.get("data"):
        errs.append(invalid("data", GoRepr("runtime.RawExtension{...}"), "field is immutable"))
    return errs


# --- status ----------------------------------------------------------------------------

_STATUS_COUNTERS = {
    "StatefulSet": ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
                    "observedGeneration"),
    "DaemonSet": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
                  "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"),
}


def validate_workload_status(kind: str, new: dict, old: dict) -> Errs:
    """ValidateStatefulSetStatusUpdate / ValidateDaemonSetStatusUpdate."""
    errs = validate_object_meta_update(new, old)
    st = new.get("status") or {}
    for f in _STATUS_COUNTERS[kind]:
        errs += nonnegative(st.get(f, 0), f"status.{f}")
    if st.get("collisionCount") is not None:
        errs += nonnegative(st["collisionCount"], "status.collisionCount")
    if kind == "StatefulSet":
        reps = st.get("replicas", 0)
        for f in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if st.get(f, 0) > reps:
                errs.append(invalid(f"status.{f}", st.get(f, 0), "cannot be greater than status.replicas"))
        if st.get("availableReplicas", 0) > st.get("readyReplicas", 0):
            errs.append(invalid("status.availableReplicas", st.get("availableReplicas", 0),
                                "cannot be greater than status.readyReplicas"))
    oc = (old.get("status") or {}).get("collisionCount")
    nc = st.get("collisionCount")
    if oc is not None and (nc is None or nc < oc):
        errs.append(invalid("status.collisionCount", nc or 0, "cannot be decremented"))
    return errs
