"""ReplicaSet status arithmetic and the slow-start batcher (replica_set_utils.go).

Pure helpers: ``calculate_status`` counts what the pods say (replicas, fully labeled,
ready, available after minReadySeconds) and keeps the ReplicaFailure condition in step
with the last manageReplicas error; ``slow_start_batch`` issues creates in batches of
1, 2, 4, … so a systematically failing create (quota, admission) costs one request, not
five hundred.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api import meta
from kubelite.client.protocols import SharedInformer
from kubelite.controllers.podcontrol import is_pod_available, is_pod_ready

Obj = dict[str, Any]

# The pod informer's index by controller: "<namespace>/<controller uid>", or "<namespace>/"
# for a pod without one (an orphan some controller may adopt). A sync reads its own pods and
# the orphans instead of every pod of the namespace.
CONTROLLER_INDEX = "controller-uid"


def controller_index_values(pod: Obj) -> tuple[str, ...]:
    """The pod's value in CONTROLLER_INDEX."""
    ref = meta.controller_ref(pod)
    uid = (ref.get("uid") or "") if ref is not None else ""
    return (f"{meta.namespace(pod)}/{uid}",)


def controlled_and_orphans(pods: SharedInformer, ns: str, uid: str) -> list[Obj]:
    """The cached pods of namespace ns that the controller with this uid controls, then the
    namespace's pods without a controller; pods of other controllers are left out."""
    orphans = pods.by_index(CONTROLLER_INDEX, f"{ns}/")
    return pods.by_index(CONTROLLER_INDEX, f"{ns}/{uid}") + orphans if uid else orphans


SLOW_START_INITIAL_BATCH = 1
BURST_REPLICAS = 500
STATUS_UPDATE_RETRIES = 1


def new_condition(type_: str, status: str, reason: str, message: str, now: _dt.datetime) -> Obj:
    """A ReplicaSetCondition (no lastUpdateTime, unlike Deployments)."""
    return {"type": type_, "status": status, "lastTransitionTime": meta.rfc3339(now),
            "reason": reason, "message": message}


def get_condition(status: Obj, type_: str) -> Obj | None:
    """The condition of that type, if any."""
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def set_condition(status: Obj, cond: Obj) -> None:
    """Add or replace (same status and reason: keep the existing one)."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, type_: str) -> None:
    """Drop the condition of that type."""
    conds = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def calculate_status(rs: Obj, pods: list[Obj], manage_error: Exception | None, now: _dt.datetime) -> Obj:
    """The status a ReplicaSet should report for its (claimed, active) pods."""
    status = dict(rs.get("status") or {})
    if status.get("conditions"):
        status["conditions"] = [dict(c) for c in status["conditions"]]
    template_labels = ((rs.get("spec", {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(rs.get("spec", {}).get("minReadySeconds") or 0)
    fully = ready = available = 0
    for pod in pods:
        labels = meta.labels(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    failure = get_condition(status, "ReplicaFailure")
    if manage_error is not None and failure is None:
        diff = len(pods) - int(rs.get("spec", {}).get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        message = getattr(manage_error, "message", None) or str(manage_error)
        set_condition(status, new_condition("ReplicaFailure", "True", reason, message, now))
    elif manage_error is None and failure is not None:
        remove_condition(status, "ReplicaFailure")
    status["replicas"] = len(pods)
    status["fullyLabeledReplicas"] = fully
    status["readyReplicas"] = ready
    status["availableReplicas"] = available
    # Go's omitempty: zero counters are absent from the JSON (replicas is always there).
    for f in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"):
        if not status.get(f):
            status.pop(f, None)
    return status


def status_unchanged(rs: Obj, new: Obj) -> bool:
    """True when writing ``new`` would change nothing (and observedGeneration is current)."""
    old = rs.get("status") or {}
    g = lambda s, f: int(s.get(f) or 0)  # noqa: E731
    return (all(g(old, f) == g(new, f) for f in ("replicas", "fullyLabeledReplicas", "readyReplicas",
                                                   "availableReplicas"))
            and int(rs["metadata"].get("generation") or 0) == g(old, "observedGeneration")
            and (old.get("conditions") or []) == (new.get("conditions") or []))


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[Any]]) -> tuple[int, Exception | None]:
    """Call ``fn`` ``count`` times in doubling concurrent batches; stop after a failing batch.

    Returns (successes, first error)."""
    remaining, successes = count, 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for e in errors:
            if isinstance(e, asyncio.CancelledError):
                raise e
        successes += batch - len(errors)
        if errors:
            err = errors[0]
            return successes, err if isinstance(err, Exception) else Exception(str(err))
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None
