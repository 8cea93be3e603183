"""Rollout arithmetic and bookkeeping for Deployments, as upstream's deployment/util.

Everything here is pure: plain dicts in, numbers or mutated dicts out, no I/O.  The
controller files (sync, rolling, recreate, progress, rollback) call these functions and
do the API writes.  Field and annotation names are upstream's; so is the rounding:
maxSurge percentages round *up*, maxUnavailable percentages round *down*, so a
10-replica Deployment at 25%/25% may run 13 pods and must keep 8 available.
"""
from __future__ import annotations

import copy
import datetime as _dt
import math
from collections.abc import Iterable
from typing import Any

from kubelite.api import meta

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
DEPRECATED_ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
POD_TEMPLATE_HASH = "pod-template-hash"
# kubelite's own rollout annotations (autorollback.py); the two state ones below are the
# controller's bookkeeping and, like the revision, never travel to a ReplicaSet.
KUBELITE_ROLLOUT_PREFIX = "rollout.kubelite.dev/"
LAST_COMPLETE = KUBELITE_ROLLOUT_PREFIX + "last-complete"
ROLLED_BACK_FROM = KUBELITE_ROLLOUT_PREFIX + "rolled-back-from"
# canary.py's bookkeeping (which revision, which step since when) and the weights the proxies read.
TRAFFIC_WEIGHTS = KUBELITE_ROLLOUT_PREFIX + "traffic-weights"
CANARY_REVISION = KUBELITE_ROLLOUT_PREFIX + "canary-revision"
CANARY_STEP = KUBELITE_ROLLOUT_PREFIX + "canary-step"
CANARY_STEP_STARTED = KUBELITE_ROLLOUT_PREFIX + "canary-step-started"
# The new revision's request / error counts when its step began (errorrate.py).
CANARY_BASELINE = KUBELITE_ROLLOUT_PREFIX + "canary-traffic-baseline"
CANARY_STATE = (TRAFFIC_WEIGHTS, CANARY_REVISION, CANARY_STEP, CANARY_STEP_STARTED, CANARY_BASELINE)

# Condition reasons (Progressing / Available), upstream's exact strings.
RS_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

ROLLBACK_NOT_FOUND = "DeploymentRollbackRevisionNotFound"
ROLLBACK_UNCHANGED = "DeploymentRollbackTemplateUnchanged"
ROLLBACK_DONE = "DeploymentRollback"

MAX_INT32 = 2**31 - 1
MAX_REV_HISTORY_CHARS = 2000

# Annotations a Deployment never copies onto its ReplicaSets (and a rollback never
# copies back).
_SKIP_COPY = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                        DEPRECATED_ROLLBACK_TO, LAST_COMPLETE, ROLLED_BACK_FROM, *CANARY_STATE})


# --- small accessors -------------------------------------------------------------------

def replicas(obj: Obj | None) -> int:
    """spec.replicas of a Deployment or ReplicaSet (1 when unset, as defaulting does)."""
    if obj is None:
        return 0
    r = obj.get("spec", {}).get("replicas")
    return 1 if r is None else int(r)


def status_int(obj: Obj | None, field: str) -> int:
    """An integer status field, 0 when absent."""
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def strategy_type(d: Obj) -> str:
    """spec.strategy.type (RollingUpdate when unset, as defaulting does)."""
    return (d.get("spec", {}).get("strategy") or {}).get("type") or "RollingUpdate"


def is_rolling_update(d: Obj) -> bool:
    """True for the RollingUpdate strategy."""
    return strategy_type(d) == "RollingUpdate"


def creation_key(obj: Obj) -> tuple[str, str]:
    """Sort key: oldest first, name breaks ties (ReplicaSetsByCreationTimestamp)."""
    md = obj.get("metadata", {})
    ts = meta.parse_time(md.get("creationTimestamp"))
    return (ts.isoformat() if ts else "", md.get("name", ""))


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """ReplicaSets oldest first."""
    return sorted(rss, key=creation_key)


def by_size_older(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; among equals the older first (ReplicaSetsBySizeOlder)."""
    return sorted(by_creation(rss), key=lambda rs: -replicas(rs))


def by_size_newer(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; among equals the newer first (ReplicaSetsBySizeNewer)."""
    return sorted(list(reversed(by_creation(rss))), key=lambda rs: -replicas(rs))


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    """ReplicaSets that want at least one pod."""
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


# --- int-or-percent and the two fenceposts ---------------------------------------------

def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: 3 → 3, "25%" of 10 → 3 (up) or 2 (down)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value)
    if not s.endswith("%"):
        # A string without % is an int in upstream's IntOrString only if typed so;
        # validation rejects it, so treat digits as an int and anything else as an error.
        if s.isdigit():
            return int(s)
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    try:
        pct = int(s[:-1])
    except ValueError:
        raise ValueError(f"invalid value {s!r}: strconv.Atoi failed") from None
    exact = pct * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """(surge, unavailable) for ``desired`` replicas; never both zero.

    Rounding down may turn maxUnavailable into 0 while surge is 0 too; upstream then
    allows 1 unavailable (surge might be blocked by quota), e.g. 1 desired, 0 surge,
    1% unavailable → scale old -1, then new +1."""
    surge = scaled_value(0 if max_surge is None else max_surge, desired, True)
    unavailable = scaled_value(0 if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling_params(d: Obj) -> tuple[Any, Any]:
    ru = (d.get("spec", {}).get("strategy") or {}).get("rollingUpdate") or {}
    return ru.get("maxSurge"), ru.get("maxUnavailable")


def max_unavailable(d: Obj) -> int:
    """Pods a rolling Deployment may have unavailable (0 for Recreate or 0 replicas)."""
    want = replicas(d)
    if not is_rolling_update(d) or want == 0:
        return 0
    _, unavailable = resolve_fenceposts(*_rolling_params(d), want)
    return min(unavailable, want)


def min_available(d: Obj) -> int:
    """replicas - maxUnavailable (0 for Recreate)."""
    if not is_rolling_update(d):
        return 0
    return replicas(d) - max_unavailable(d)


def max_surge(d: Obj) -> int:
    """Pods a rolling Deployment may run above spec.replicas (0 for Recreate)."""
    if not is_rolling_update(d):
        return 0
    surge, _ = resolve_fenceposts(*_rolling_params(d), replicas(d))
    return surge


# --- replica counts --------------------------------------------------------------------

def replica_count(rss: Iterable[Obj | None]) -> int:
    """Sum of spec.replicas."""
    return sum(replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: Iterable[Obj | None]) -> int:
    """Sum of status.replicas."""
    return sum(status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replica_count(rss: Iterable[Obj | None]) -> int:
    """Sum of status.readyReplicas."""
    return sum(status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replica_count(rss: Iterable[Obj | None]) -> int:
    """Sum of status.availableReplicas."""
    return sum(status_int(rs, "availableReplicas") for rs in rss if rs is not None)


# --- the rollout steps -----------------------------------------------------------------

def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    """How big the new ReplicaSet may be now.

    RollingUpdate: grow up to replicas + maxSurge pods in total, never past
    spec.replicas. Example (rolling.go): 10 replicas, surge 3, old RS at 10 and new at 0
    → the new RS may go to 3 (13 pods in all).  Recreate: straight to spec.replicas."""
    kind = strategy_type(d)
    want = replicas(d)
    if kind == "RollingUpdate":
        surge = scaled_value(_rolling_params(d)[0], want, True)
        current = replica_count(all_rss)
        max_total = want + surge
        if current >= max_total:
            return replicas(new_rs)
        scale_up = min(max_total - current, want - replicas(new_rs))
        return replicas(new_rs) + scale_up
    if kind == "Recreate":
        return want
    raise ValueError(f"deployment type {kind} isn't supported")


def max_scaled_down(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    """How many old pods a rolling update may remove in this step.

    allPods - minAvailable - newRSUnavailable.  Example (rolling.go), 10 replicas, 25%:
    after the new RS grows to 3 (13 pods, none of them available yet):
    13 - 8 - 3 = 2, so the old RS goes 10 → 8."""
    min_avail = replicas(d) - max_unavailable(d)
    new_unavailable = replicas(new_rs) - status_int(new_rs, "availableReplicas")
    return replica_count(all_rss) - min_avail - new_unavailable


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The new RS owns every desired replica, agrees on the size, and all are available."""
    if rs is None:
        return False
    try:
        desired = int(meta.annotations_of(rs).get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    want = replicas(d)
    return replicas(rs) == want and desired == want and status_int(rs, "availableReplicas") == want


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only active RS, or the newest one when none is active; None when several are."""
    if new_rs is None and not old_rss:
        return None
    olds = list(reversed(by_creation(old_rss)))
    active = filter_active(olds + [new_rs])
    if not active:
        return new_rs if new_rs is not None else olds[0]
    if len(active) == 1:
        return active[0]
    return None


# --- proportional scaling --------------------------------------------------------------

def _int_annotation(rs: Obj, key: str) -> int | None:
    v = meta.annotations_of(rs).get(key)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return None


def desired_replicas_annotation(rs: Obj) -> int | None:
    """deployment.kubernetes.io/desired-replicas as an int, None if absent or bad."""
    return _int_annotation(rs, DESIRED_REPLICAS)


def max_replicas_annotation(rs: Obj) -> int | None:
    """deployment.kubernetes.io/max-replicas as an int, None if absent or bad."""
    return _int_annotation(rs, MAX_REPLICAS)


def round_half_away(x: float) -> int:
    """integer.RoundToInt32: Go's math.Round (halves away from zero)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def replicaset_fraction(rs: Obj, d: Obj) -> int:
    """How many replicas this RS gains (or loses) when the Deployment is resized.

    Its share of the new total: rs.replicas * (d.replicas + maxSurge) / max-replicas."""
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    annotated = max_replicas_annotation(rs)
    if annotated is None:
        annotated = status_int(d, "replicas")
    if annotated <= 0:
        # No annotation and status.replicas 0 (or a bad annotation): upstream divides by
        # zero here (Go yields Inf and an undefined int).  With no known old size, count
        # this RS as the whole old size: it moves toward the new size, and get_proportion
        # bounds the move by what is left to hand out.
        annotated = replicas(rs) or 1
    new_size = replicas(rs) * deployment_replicas / annotated
    return round_half_away(new_size) - replicas(rs)


def get_proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    """The part of ``to_add`` this RS takes, bounded by what is still left to hand out."""
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replicaset_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> tuple[list[Obj], dict[str, int], str]:
    """New sizes of every active RS when a rolling Deployment is resized mid-rollout.

    Example (sync.go): 10 replicas, maxSurge 3, maxUnavailable 2, old RS 8 and new RS 5
    (13 = 10 + 3 pods, both annotated max-replicas 13), scaled to 30 → allowed 33,
    20 to add: old 8*33/13 = 20.3 → 20, new 5*33/13 = 12.7 → 13.
    Returns (RSs in the order to apply, name → size, "up" | "down" | "")."""
    active = filter_active(old_rss + [new_rs])
    total = replica_count(active)
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - total
    op = ""
    if to_add > 0:
        active = by_size_newer(active)
        op = "up"
    elif to_add < 0:
        active = by_size_older(active)
        op = "down"
    added = 0
    sizes: dict[str, int] = {}
    for rs in active:
        if to_add != 0:
            p = get_proportion(rs, d, to_add, added)
            sizes[meta.name(rs)] = replicas(rs) + p
            added += p
        else:
            sizes[meta.name(rs)] = replicas(rs)
    if active and to_add != 0:
        # Rounding leftovers go to the largest RS (the first in the order).
        first = meta.name(active[0])
        sizes[first] = max(0, sizes[first] + to_add - added)
    return active, sizes, op


# --- annotations and revisions ---------------------------------------------------------

def revision(obj: Obj | None) -> int:
    """The revision annotation as an int (0 when absent); ValueError when not a number."""
    if obj is None:
        return 0
    v = meta.annotations_of(obj).get(REVISION)
    return 0 if v is None else int(v)


def _revisions(rss: Iterable[Obj | None]) -> list[int]:
    out = []
    for rs in rss:
        if rs is None:
            continue
        try:
            out.append(revision(rs))
        except ValueError:
            continue  # upstream skips RSs whose revision does not parse
    return out


def max_revision(rss: Iterable[Obj | None]) -> int:
    """The highest revision among the RSs."""
    return max(_revisions(rss), default=0)


def last_revision(rss: Iterable[Obj | None]) -> int:
    """The second-highest revision (what `rollout undo` goes back to)."""
    top = sec = 0
    for v in _revisions(rss):
        if v >= top:
            top, sec = v, top
        elif v > sec:
            sec = v
    return sec


def by_revision(rss: Iterable[Obj]) -> list[Obj]:
    """Oldest revision first; creation time breaks ties (ReplicaSetsByRevision)."""
    def k(rs: Obj) -> tuple[int, tuple[str, str]]:
        try:
            return (revision(rs), creation_key(rs))
        except ValueError:
            return (0, creation_key(rs))
    return sorted(rss, key=k)


def set_deployment_revision(d: Obj, rev: str) -> bool:
    """Set the Deployment's revision annotation; True if it changed."""
    ann = meta.meta(d).setdefault("annotations", {})
    if ann.get(REVISION) != rev:
        ann[REVISION] = rev
        return True
    return False


def copy_annotations_to_rs(d: Obj, rs: Obj) -> bool:
    """Copy the Deployment's annotations (change-cause…) onto the RS; True if changed."""
    ann = meta.meta(rs).setdefault("annotations", {})
    changed = False
    for k, v in meta.annotations_of(d).items():
        if k in _SKIP_COPY or (k in ann and ann[k] == v):
            continue
        ann[k] = v
        changed = True
    return changed


def set_deployment_annotations_to(d: Obj, rs: Obj) -> None:
    """On rollback: the Deployment takes the RS's copyable annotations (its change-cause)."""
    kept = {k: v for k, v in meta.annotations_of(d).items() if k in _SKIP_COPY}
    for k, v in meta.annotations_of(rs).items():
        if k not in _SKIP_COPY:
            kept[k] = v
    meta.meta(d)["annotations"] = kept


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    """Write desired-replicas and max-replicas; True if either changed."""
    ann = meta.meta(rs).setdefault("annotations", {})
    changed = False
    for k, v in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    """True if desired-replicas or max-replicas differ from the given values."""
    ann = meta.annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: str, exists: bool,
                           limit_chars: int = MAX_REV_HISTORY_CHARS) -> bool:
    """Copy annotations, raise the RS's revision to ``new_revision``; True if changed.

    An RS that already had a (lower) revision is being rolled back to: its old number is
    appended to revision-history (dropping the oldest entries past ``limit_chars``)."""
    changed = copy_annotations_to_rs(d, rs)
    ann = meta.meta(rs).setdefault("annotations", {})
    had = REVISION in ann
    old_rev = ann.get(REVISION, "")
    try:
        old_int = int(old_rev) if old_rev != "" else 0
    except ValueError:
        return False
    try:
        new_int = int(new_revision)
    except ValueError:
        return False
    if old_int < new_int:
        ann[REVISION] = new_revision
        changed = True
    if had and old_int < new_int:
        history = ann.get(REVISION_HISTORY, "")
        if not history:
            ann[REVISION_HISTORY] = old_rev
        else:
            olds = history.split(",")
            total = len(history) + len(old_rev) + 1
            start = 0
            while total > limit_chars and start < len(olds):
                total -= len(olds[start]) + 1
                start += 1
            if total <= limit_chars:
                ann[REVISION_HISTORY] = ",".join(olds[start:] + [old_rev])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# --- templates -------------------------------------------------------------------------

def _semantic(v: Any) -> Any:
    """Drop empty values so nil and empty compare equal (apiequality.Semantic)."""
    if isinstance(v, dict):
        out = {k: _semantic(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [])}
    if isinstance(v, list):
        return [_semantic(x) for x in v]
    return v


def equal_ignore_hash(t1: Obj | None, t2: Obj | None) -> bool:
    """Two pod templates are the same rollout, ignoring the pod-template-hash label."""
    a, b = copy.deepcopy(t1 or {}), copy.deepcopy(t2 or {})
    for t in (a, b):
        labels = (t.get("metadata") or {}).get("labels")
        if isinstance(labels, dict):
            labels.pop(POD_TEMPLATE_HASH, None)
    return _semantic(a) == _semantic(b)


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest RS whose template equals the Deployment's."""
    template = d.get("spec", {}).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash(rs.get("spec", {}).get("template"), template):
            return rs
    return None


def find_old_rss(d: Obj, rss: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(old RSs with pods wanted, every old RS)."""
    new_rs = find_new_rs(d, rss)
    all_old = [rs for rs in rss if new_rs is None or meta.uid(rs) != meta.uid(new_rs)]
    return [rs for rs in all_old if replicas(rs) != 0], all_old


def set_from_rs_template(d: Obj, template: Obj) -> Obj:
    """Give the Deployment an RS's template, minus the pod-template-hash label."""
    t = copy.deepcopy(template)
    labels = dict((t.get("metadata") or {}).get("labels") or {})
    labels.pop(POD_TEMPLATE_HASH, None)
    t.setdefault("metadata", {})["labels"] = labels
    d.setdefault("spec", {})["template"] = t
    return d


# --- conditions ------------------------------------------------------------------------

def new_condition(type_: str, status: str, reason: str, message: str,
                  now: _dt.datetime | None = None) -> Obj:
    """A DeploymentCondition stamped with ``now``."""
    t = meta.rfc3339(now)
    return {"type": type_, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def get_condition(status: Obj | None, type_: str) -> Obj | None:
    """The condition of that type, if any."""
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def set_condition(status: Obj, cond: Obj) -> None:
    """Add or replace a condition; same status+reason is a no-op, same status keeps the
    transition time."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    cond = dict(cond)
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, type_: str) -> None:
    """Drop the condition of that type."""
    conds = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def rs_condition_to_deployment(cond: Obj) -> Obj:
    """Promote a ReplicaSet condition (ReplicaFailure) to a Deployment condition."""
    return {"type": cond.get("type"), "status": cond.get("status"),
            "lastUpdateTime": cond.get("lastTransitionTime"),
            "lastTransitionTime": cond.get("lastTransitionTime"),
            "reason": cond.get("reason"), "message": cond.get("message")}


# --- progress --------------------------------------------------------------------------

def has_progress_deadline(d: Obj) -> bool:
    """progressDeadlineSeconds is set and not MaxInt32."""
    p = d.get("spec", {}).get("progressDeadlineSeconds")
    return p is not None and p != MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    """revisionHistoryLimit is set and not MaxInt32."""
    r = d.get("spec", {}).get("revisionHistoryLimit")
    return r is not None and r != MAX_INT32


def deployment_complete(d: Obj, status: Obj) -> bool:
    """Every desired replica is updated and available and no old pod runs."""
    want = replicas(d)
    return (int(status.get("updatedReplicas") or 0) == want
            and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= int(d.get("metadata", {}).get("generation") or 0))


def deployment_progressing(d: Obj, new_status: Obj) -> bool:
    """New pods came up or became ready/available, or old pods went away."""
    old = d.get("status") or {}
    g = lambda s, f: int(s.get(f) or 0)  # noqa: E731
    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new_status, "replicas") - g(new_status, "updatedReplicas")
    return (g(new_status, "updatedReplicas") > g(old, "updatedReplicas") or new_old < old_old
            or g(new_status, "readyReplicas") > g(old, "readyReplicas")
            or g(new_status, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: Obj, new_status: Obj, now: _dt.datetime) -> bool:
    """The Progressing condition is older than progressDeadlineSeconds (or says so)."""
    if not has_progress_deadline(d):
        return False
    cond = get_condition(new_status, "Progressing")
    if cond is None:
        return False
    if cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = meta.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    deadline = since + _dt.timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))
    return deadline < now


def scale_targets(d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> tuple[str, list[tuple[Obj, int]], str]:
    """What a scaling event does (sync.go ``scale``), as (branch, [(rs, size)], op).

    branch "single": one active (or the latest) RS takes spec.replicas;
    "saturated": the new RS holds everything, old active RSs go to 0;
    "proportional": a rolling Deployment resized mid-rollout spreads the change over
    every active RS (see ``proportional_sizes``); "" when nothing is to be done."""
    aol = find_active_or_latest(new_rs, old_rss)
    if aol is not None:
        if replicas(aol) == replicas(d):
            return "", [], ""
        return "single", [(aol, replicas(d))], "up" if replicas(aol) < replicas(d) else "down"
    if is_saturated(d, new_rs):
        return "saturated", [(rs, 0) for rs in filter_active(old_rss)], "down"
    if is_rolling_update(d):
        active, sizes, op = proportional_sizes(d, new_rs, old_rss)
        return "proportional", [(rs, sizes[meta.name(rs)]) for rs in active], op
    return "", [], ""


def paused_at_step(d: Obj) -> bool:
    """Whether the Deployment is paused by a canary's own ``pause`` step (not by a person's
    `kubectl rollout pause` during a timed step, which keeps its step's start time)."""
    ann = meta.annotations_of(d)
    return bool((d.get("spec") or {}).get("paused") and ann.get(CANARY_REVISION)
                and CANARY_STEP_STARTED in ann and not ann[CANARY_STEP_STARTED])
