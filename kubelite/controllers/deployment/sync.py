"""Scaling, status and revision bookkeeping shared by every rung (upstream sync.go).

- ``get_all_rss_and_sync_revision`` finds (or creates) the new RS: the one whose
  template equals the Deployment's; it raises that RS's revision to max(old)+1 (which
  is how `rollout undo` re-uses an old RS) and mirrors it on the Deployment.
- ``scale`` handles a resize: one active RS takes it all, a saturated new RS drains the
  old ones, and a resize mid-rollout is spread proportionally (util.scale_targets).
- ``calculate_status`` / ``sync_deployment_status`` derive the Deployment status from
  its RSs (never from pods) and set the Available condition.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from kubelite.api import meta
from kubelite.client.errors import AlreadyExists, StatusError
from kubelite.controllers.deployment import history, util
from kubelite.controllers.deployment.context import DeploymentContext
from kubelite.controllers.podcontrol import namespace_terminating

Obj = dict[str, Any]

_COUNTERS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
             "unavailableReplicas")


async def sync_status_only(dc: DeploymentContext, d: Obj, rs_list: list[Obj]) -> None:
    """A Deployment being deleted: only keep its status honest."""
    new_rs, old_rss = await get_all_rss_and_sync_revision(dc, d, rs_list, create=False)
    await sync_deployment_status(dc, [*old_rss, new_rs], new_rs, d)


async def sync(dc: DeploymentContext, d: Obj, rs_list: list[Obj]) -> None:
    """Paused or resized: scale without rolling out, prune history when paused."""
    new_rs, old_rss = await get_all_rss_and_sync_revision(dc, d, rs_list, create=False)
    await scale(dc, d, new_rs, old_rss)
    if d.get("spec", {}).get("paused") and _rollback_to(d) is None:
        await history.cleanup_deployment(dc, old_rss, d)
    await sync_deployment_status(dc, [*old_rss, new_rs], new_rs, d)


def _rollback_to(d: Obj) -> str | None:
    return meta.annotations_of(d).get(util.DEPRECATED_ROLLBACK_TO) or None


async def check_paused_conditions(dc: DeploymentContext, d: Obj) -> None:
    """Progressing=Unknown DeploymentPaused/DeploymentResumed when pause flips."""
    if not util.has_progress_deadline(d):
        return
    status = d.setdefault("status", {})
    cond = util.get_condition(status, "Progressing")
    if cond is not None and cond.get("reason") == util.TIMED_OUT:
        return
    paused_cond = cond is not None and cond.get("reason") == util.PAUSED
    paused = bool(d.get("spec", {}).get("paused"))
    if paused and not paused_cond:
        util.set_condition(status, util.new_condition("Progressing", "Unknown", util.PAUSED,
                                                      "Deployment is paused", dc.now()))
    elif not paused and paused_cond:
        util.set_condition(status, util.new_condition("Progressing", "Unknown", util.RESUMED,
                                                      "Deployment is resumed", dc.now()))
    else:
        return
    await dc.update_status(d)


async def get_all_rss_and_sync_revision(dc: DeploymentContext, d: Obj, rs_list: list[Obj],
                                        create: bool) -> tuple[Obj | None, list[Obj]]:
    """(new RS or None, every old RS); with ``create`` the new RS is made if missing."""
    _, all_old = util.find_old_rss(d, rs_list)
    new_rs = await get_new_replicaset(dc, d, rs_list, all_old, create)
    return new_rs, all_old


async def get_new_replicaset(dc: DeploymentContext, d: Obj, rs_list: list[Obj], old_rss: list[Obj],
                             create: bool) -> Obj | None:
    """The RS for the current template, its revision synced; created when asked to."""
    existing = util.find_new_rs(d, rs_list)
    new_revision = str(util.max_revision(old_rss) + 1)
    spec = d.get("spec", {})
    if existing is not None:
        rs_copy = copy.deepcopy(existing)
        ann_updated = util.set_new_rs_annotations(d, rs_copy, new_revision, exists=True)
        min_ready = int(spec.get("minReadySeconds") or 0)
        if ann_updated or int(rs_copy["spec"].get("minReadySeconds") or 0) != min_ready:
            _set_min_ready(rs_copy, min_ready)
            return await dc.rs_client.update(rs_copy)
        needs_update = util.set_deployment_revision(d, meta.annotations_of(rs_copy).get(util.REVISION, ""))
        status = d.setdefault("status", {})
        if util.has_progress_deadline(d) and util.get_condition(status, "Progressing") is None:
            util.set_condition(status, util.new_condition(
                "Progressing", "True", util.FOUND_NEW_RS, f'Found new replica set "{meta.name(rs_copy)}"', dc.now()))
            needs_update = True
        if needs_update:
            await dc.update_status(d)
        return rs_copy
    if not create:
        return None
    return await _create_new_replicaset(dc, d, old_rss, new_revision)


def _set_min_ready(rs: Obj, seconds: int) -> None:
    if seconds:
        rs["spec"]["minReadySeconds"] = seconds
    else:
        rs["spec"].pop("minReadySeconds", None)


def _new_replicaset_object(d: Obj) -> Obj:
    """The RS for the Deployment's template: `<name>-<hash>`, hash label on selector,
    template and RS, controllerRef to the Deployment, 0 replicas for now."""
    spec = d.get("spec", {})
    template = copy.deepcopy(spec.get("template") or {})
    collision = (d.get("status") or {}).get("collisionCount")
    h = history.compute_hash(template, collision)
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels[util.POD_TEMPLATE_HASH] = h
    template.setdefault("metadata", {})["labels"] = labels
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), util.POD_TEMPLATE_HASH: h}
    rs: Obj = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{meta.name(d)}-{h}", "namespace": meta.namespace(d),
                     "ownerReferences": [meta.new_controller_ref(d, "apps/v1", "Deployment")],
                     "labels": dict(labels)},
        "spec": {"replicas": 0, "selector": selector, "template": template},
    }
    _set_min_ready(rs, int(spec.get("minReadySeconds") or 0))
    return rs


async def _create_new_replicaset(dc: DeploymentContext, d: Obj, old_rss: list[Obj], new_revision: str) -> Obj:
    new_rs = _new_replicaset_object(d)
    count = util.new_rs_new_replicas(d, old_rss + [new_rs], new_rs)
    new_rs["spec"]["replicas"] = count
    util.set_new_rs_annotations(d, new_rs, new_revision, exists=False)
    name, ns = meta.name(new_rs), meta.namespace(d)
    status = d.setdefault("status", {})
    already_exists = False
    try:
        created = await dc.rs_client.create(new_rs, ns)
    except AlreadyExists:
        found = dc.rs_informer.get(f"{ns}/{name}") or await dc.rs_client.get(name, ns)
        ref = meta.controller_ref(found)
        if ref is not None and ref.get("uid") == meta.uid(d) and util.equal_ignore_hash(
                d["spec"].get("template"), found.get("spec", {}).get("template")):
            created, already_exists = copy.deepcopy(found), True
        else:
            # Someone else's RS has our name: a new hash next time.
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            try:
                await dc.update_status(d)
            except StatusError:
                pass
            raise
    except StatusError as e:
        if namespace_terminating(e):
            raise
        msg = f'Failed to create new replica set "{name}": {e.message}'
        if util.has_progress_deadline(d):
            util.set_condition(status, util.new_condition("Progressing", "False", util.FAILED_RS_CREATE,
                                                          msg, dc.now()))
            try:
                await dc.update_status(d)
            except StatusError:
                pass
        dc.event(d, "Warning", util.FAILED_RS_CREATE, msg)
        raise
    if not already_exists and count > 0:
        dc.event(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {meta.name(created)} to {count}")
    needs_update = util.set_deployment_revision(d, new_revision)
    if not already_exists and util.has_progress_deadline(d):
        util.set_condition(status, util.new_condition(
            "Progressing", "True", util.NEW_RS_CREATED, f'Created new replica set "{meta.name(created)}"', dc.now()))
        needs_update = True
    if needs_update:
        await dc.update_status(d)
    return created


async def scale(dc: DeploymentContext, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
    """Apply a resize to the RSs (see util.scale_targets for the three cases)."""
    branch, targets, op = util.scale_targets(d, new_rs, old_rss)
    for rs, size in targets:
        if branch == "proportional":
            await scale_replicaset(dc, rs, size, d, op)
        else:
            await scale_rs_and_record_event(dc, rs, size, d)


async def scale_rs_and_record_event(dc: DeploymentContext, rs: Obj, new_scale: int,
                                    d: Obj) -> tuple[bool, Obj]:
    """Resize an RS if its size differs; (scaled, RS as now stored)."""
    if util.replicas(rs) == new_scale:
        return False, rs
    op = "up" if util.replicas(rs) < new_scale else "down"
    return await scale_replicaset(dc, rs, new_scale, d, op)


async def scale_replicaset(dc: DeploymentContext, rs: Obj, new_scale: int, d: Obj,
                           op: str) -> tuple[bool, Obj]:
    """PUT the RS with its new size and desired/max-replicas annotations.

    Event: ``Scaled up replica set X to N from M`` (v1.28 wording)."""
    want = util.replicas(d)
    maximum = want + util.max_surge(d)
    size_changed = util.replicas(rs) != new_scale
    if not size_changed and not util.replicas_annotations_need_update(rs, want, maximum):
        return False, rs
    old_scale = util.replicas(rs)
    rs_copy = copy.deepcopy(rs)
    rs_copy["spec"]["replicas"] = new_scale
    util.set_replicas_annotations(rs_copy, want, maximum)
    updated = await dc.rs_client.update(rs_copy)
    if size_changed:
        dc.event(d, "Normal", "ScalingReplicaSet",
                 f"Scaled {op} replica set {meta.name(updated)} to {new_scale} from {old_scale}")
    return size_changed, updated


def normalized_status(status: Obj | None) -> Obj:
    """A status with zero counters dropped (Go omitempty), for comparisons."""
    out = dict(status or {})
    for f in _COUNTERS:
        if not out.get(f):
            out.pop(f, None)
    if not out.get("conditions"):
        out.pop("conditions", None)
    if out.get("collisionCount") is None:
        out.pop("collisionCount", None)
    return out


def calculate_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, d: Obj, now: Any) -> Obj:
    """The Deployment status its RSs imply, with the Available condition."""
    available = util.available_replica_count(all_rss)
    total = util.replica_count(all_rss)
    old = d.get("status") or {}
    status: Obj = {
        "observedGeneration": int(d["metadata"].get("generation") or 0),
        "replicas": util.actual_replica_count(all_rss),
        "updatedReplicas": util.actual_replica_count([new_rs]),
        "readyReplicas": util.ready_replica_count(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
        "collisionCount": old.get("collisionCount"),
        "conditions": [dict(c) for c in old.get("conditions") or []],
    }
    if available >= util.replicas(d) - util.max_unavailable(d):
        cond = util.new_condition("Available", "True", util.MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        cond = util.new_condition("Available", "False", util.MIN_UNAVAILABLE,
                                  "Deployment does not have minimum availability.", now)
    util.set_condition(status, cond)
    return normalized_status(status)


async def sync_deployment_status(dc: DeploymentContext, all_rss: Sequence[Obj | None], new_rs: Obj | None,
                                 d: Obj) -> None:
    """Write the calculated status if it differs."""
    new_status = calculate_status(all_rss, new_rs, d, dc.now())
    if normalized_status(d.get("status")) == new_status:
        return
    d["status"] = new_status
    await dc.update_status(d)


async def is_scaling_event(dc: DeploymentContext, d: Obj, rs_list: list[Obj]) -> bool:
    """An active RS was sized for a different spec.replicas (desired-replicas annotation)."""
    new_rs, old_rss = await get_all_rss_and_sync_revision(dc, d, rs_list, create=False)
    for rs in util.filter_active(old_rss + [new_rs]):
        desired = util.desired_replicas_annotation(rs)
        if desired is not None and desired != util.replicas(d):
            return True
    return False
