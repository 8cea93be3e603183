"""POST pods/NAME/eviction: a pod delete that honours PodDisruptionBudgets.

The checks and answers are upstream's (``pkg/registry/core/pod/storage/eviction.go``):

- a pod that is Pending, Succeeded, Failed or already terminating is deleted without
  looking at budgets (it is not contributing to any);
- more than one budget covering the pod: a Failure Status with code 500 and upstream's
  message; none: a plain delete;
- a pod that is not Ready may go when the budget says ``AlwaysAllow``, or (the default,
  ``IfHealthyBudget``) while the budget is met, with a resourceVersion precondition so it
  cannot become ready in between;
- otherwise the budget must allow a disruption: its status is compare-and-swapped with
  disruptionsAllowed one lower and the pod in ``disruptedPods`` (retried on conflict); no
  disruption allowed is 429 TooManyRequests with the ``DisruptionBudget`` cause; a budget
  the controller has not yet seen at its generation is 429 with a 10 s retry;
- before the delete the pod gets ``DisruptionTarget=True`` (reason EvictionByEvictionAPI);
  the eviction's deleteOptions (grace period, preconditions, dry run) apply to the delete.
"""
from __future__ import annotations

import asyncio
import copy
import random
from typing import Any

from kubelite.api import errors, meta
from kubelite.api.disruption import allowed_condition, set_condition
from kubelite.api.resources import PODDISRUPTIONBUDGETS, PODS
from kubelite.api.selectors import selector_from_dict
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]

EVICTION_RETRIES = 20       # upstream's EvictionsRetry steps
RETRY_DELAY = 0.05          # seconds between conflict retries (jittered)
MAX_DISRUPTED_PODS = 2000   # upstream's MaxDisruptedPodSize
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"


def too_many_requests(cause: str, retry_after: int) -> errors.StatusError:
    """429 with the DisruptionBudget cause (and retryAfterSeconds when the client should wait)."""
    details: Obj = {"causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return errors.status_error(429, "TooManyRequests", VIOLATION, details)


def still_processing(pdb_name: str) -> errors.StatusError:
    """429 for a budget whose status is older than its spec."""
    return too_many_requests(f"The disruption budget {pdb_name} is still being processed by the server.", 10)


def can_ignore_budgets(pod: Obj) -> bool:
    """Pods that disrupt nothing by going: not started, finished, or already terminating."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or meta.is_deleting(pod)


def enforce_resource_version(pod: Obj) -> bool:
    """Whether a budget-free delete still pins the resourceVersion (a pod that may turn ready)."""
    phase = (pod.get("status") or {}).get("phase")
    return not (phase in ("Succeeded", "Failed") or meta.is_deleting(pod))


def is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def budgets_for(pod: Obj, pdbs: list[Obj]) -> list[Obj]:
    """The budgets of the pod's namespace whose selector matches it (policy/v1: empty matches all)."""
    out = []
    for pdb in pdbs:
        if meta.namespace(pdb) != meta.namespace(pod):
            continue
        try:
            sel = selector_from_dict((pdb.get("spec") or {}).get("selector"))
        except errors.StatusError:
            continue  # an invalid selector matches nothing
        if sel.matches(meta.labels(pod)):
            out.append(pdb)
    return out


def decremented(pdb: Obj, pod_name: str, now: str, dry_run: bool) -> Obj:
    """checkAndDecrement on a copy: raises when the budget forbids the eviction, else the
    budget with one disruption fewer allowed and the pod recorded as disrupted."""
    status = pdb.get("status") or {}
    name = meta.name(pdb)
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 0):
        raise still_processing(name)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.status_error(403, "Forbidden", f'poddisruptionbudgets.policy "{name}" is forbidden: '
                                  "pdb disruptions allowed is negative",
                                  {"name": name, "group": "policy", "kind": "poddisruptionbudget"})
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise errors.status_error(403, "Forbidden", f'poddisruptionbudgets.policy "{name}" is forbidden: '
                                  "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                                  {"name": name, "group": "policy", "kind": "poddisruptionbudget"})
    if allowed == 0:
        raise too_many_requests(f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
                                f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently", 0)
    out = copy.deepcopy(pdb)
    st = out.setdefault("status", {})
    st["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        cond = allowed_condition(0, int(st.get("observedGeneration") or 0))
        st["conditions"] = set_condition(st.get("conditions") or [], cond, meta.parse_time(now) or meta.now())
    if not dry_run:
        st["disruptedPods"] = {**(st.get("disruptedPods") or {}), pod_name: now}
    return out


def with_disruption_condition(pod: Obj) -> Obj:
    """The pod with DisruptionTarget=True (reason EvictionByEvictionAPI), transition time kept
    when it already was True."""
    status = pod.setdefault("status", {})
    conds = [dict(c) for c in status.get("conditions") or []]
    new = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
           "lastTransitionTime": meta.rfc3339(), "reason": "EvictionByEvictionAPI",
           "message": "Eviction API: evicting"}
    for i, c in enumerate(conds):
        if c.get("type") == "DisruptionTarget":
            if c.get("status") == "True":
                new["lastTransitionTime"] = c.get("lastTransitionTime") or new["lastTransitionTime"]
            new["lastProbeTime"] = c.get("lastProbeTime")
            conds[i] = new
            break
    else:
        conds.append(new)
    status["conditions"] = conds
    return pod


async def _sleep_before_retry() -> None:
    await asyncio.sleep(RETRY_DELAY * (1 + random.random() * 0.1))


async def add_condition_and_delete(reg: Registry, namespace: str, name: str, opts: Obj, dry_run: bool) -> None:
    """Mark the pod as a disruption target, then delete it with the eviction's options."""
    if not dry_run:
        pre = opts.get("preconditions") or {}

        def mutate(pod: Obj) -> Obj:
            md = pod["metadata"]
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise errors.conflict("Pod", "", name, f"the UID in the precondition ({pre['uid']}) does not match "
                                      f"the UID in record ({md.get('uid')}). The object might have been deleted "
                                      "and then recreated")
            if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
                raise errors.conflict("Pod", "", name, f"the ResourceVersion in the precondition "
                                      f"({pre['resourceVersion']}) does not match the ResourceVersion in record "
                                      f"({md.get('resourceVersion')}). The object might have been modified")
            return with_disruption_condition(pod)
        updated, _ = await reg.guaranteed_update(PODS, namespace, name, mutate, subresource="status")
        if pre.get("resourceVersion"):
            # Our own write moved the version: the precondition now names that write.
            opts = {**opts, "preconditions": {**pre, "resourceVersion": meta.resource_version(updated)}}
    await reg.delete(PODS, namespace, name, opts, dry_run=dry_run)


async def evict(reg: Registry, namespace: str, name: str, opts: Obj, dry_run: bool) -> Obj | None:
    """Carry out one eviction; a Status to answer with instead of Success, or None."""
    user_rv = bool((opts.get("preconditions") or {}).get("resourceVersion"))
    pod: Obj = {}
    # Budget-free deletes first: retried on conflict unless the client pinned a version.
    for attempt in range(EVICTION_RETRIES):
        pod = await reg.get(PODS, namespace, name)
        if not can_ignore_budgets(pod):
            break
        delete_opts = opts
        if enforce_resource_version(pod) and not user_rv:
            delete_opts = {**opts, "preconditions": {**(opts.get("preconditions") or {}),
                                                      "resourceVersion": meta.resource_version(pod)}}
        try:
            await add_condition_and_delete(reg, namespace, name, delete_opts, dry_run)
            return None
        except errors.Conflict:
            if user_rv or attempt == EVICTION_RETRIES - 1:
                raise
            await _sleep_before_retry()

    pdbs = budgets_for(pod, (await reg.list(PODDISRUPTIONBUDGETS, namespace))[0])
    if len(pdbs) > 1:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": MULTIPLE, "code": 500}
    pin_version = False
    if pdbs:
        pdb = pdbs[0]
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        unhealthy_ok = False
        if not is_ready(pod):
            if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
                unhealthy_ok = True
            elif int(status.get("currentHealthy") or 0) >= int(status.get("desiredHealthy") or 0) > 0:
                unhealthy_ok = True  # the application is not disrupted now; an unready pod may go
        if unhealthy_ok:
            pin_version = True
        else:
            await _decrement_budget(reg, pod, pdb, dry_run)
    delete_opts = opts
    if pin_version:
        delete_opts = {**opts, "preconditions": {**(opts.get("preconditions") or {}),
                                                  "resourceVersion": meta.resource_version(pod)}}
    try:
        await add_condition_and_delete(reg, namespace, name, delete_opts, dry_run)
    except errors.Conflict:
        if pin_version and not user_rv:
            raise still_processing(meta.name(pdbs[0])) from None  # the client retries the 429
        raise
    return None


async def _decrement_budget(reg: Registry, pod: Obj, pdb: Obj, dry_run: bool) -> None:
    """Compare-and-swap the budget's status one disruption lower; re-read and retry on conflict."""
    now = meta.rfc3339()
    for attempt in range(EVICTION_RETRIES):
        new = decremented(pdb, meta.name(pod), now, dry_run)
        expected = meta.resource_version(pdb)

        def mutate(cur: Obj, new: Obj = new, expected: str = expected) -> Obj:
            cur["status"] = new["status"]
            cur["metadata"]["resourceVersion"] = expected  # compare-and-swap on what was read
            return cur
        try:
            await reg.guaranteed_update(PODDISRUPTIONBUDGETS, meta.namespace(pdb), meta.name(pdb), mutate,
                                        subresource="status", expected_rv=expected, dry_run=dry_run)
            return
        except errors.Conflict:
            if attempt == EVICTION_RETRIES - 1:
                break
            await _sleep_before_retry()
            pdb = await reg.get(PODDISRUPTIONBUDGETS, meta.namespace(pdb), meta.name(pdb))
    raise errors.timeout(f'couldn\'t update PodDisruptionBudget "{meta.name(pdb)}" due to conflicts')
