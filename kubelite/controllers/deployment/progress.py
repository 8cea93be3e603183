"""Rollout progress: the Progressing condition and the progress deadline (progress.go).

After each rollout step the Progressing condition says where the rollout stands:
NewReplicaSetAvailable once complete; ReplicaSetUpdated (lastUpdateTime refreshed)
whenever pods were added, became ready/available or old pods went away; and
ProgressDeadlineExceeded once nothing has moved for progressDeadlineSeconds.  Since no
event fires when a deadline passes, a stuck Deployment is re-queued with ``add_after``
for the moment its deadline expires.  ReplicaFailure conditions of the RSs (the new
RS first) are mirrored onto the Deployment.  Between these, autorollback.py may mark a
rollout whose new pods are failing (Progressing=False, NewPodsFailing) before its deadline.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from kubelite.api import meta
from kubelite.controllers.deployment import autorollback, sync, util
from kubelite.controllers.deployment.context import DeploymentContext

Obj = dict[str, Any]


async def sync_rollout_status(dc: DeploymentContext, all_rss: Sequence[Obj | None], new_rs: Obj | None,
                              d: Obj) -> None:
    """Write status with the Progressing / ReplicaFailure conditions of this step."""
    now = dc.now()
    new_status = sync.calculate_status(all_rss, new_rs, d, now)
    if not util.has_progress_deadline(d):
        util.remove_condition(new_status, "Progressing")
    current = util.get_condition(d.get("status"), "Progressing")
    complete_before = (int(new_status.get("replicas") or 0) == int(new_status.get("updatedReplicas") or 0)
                       and current is not None and current.get("reason") == util.NEW_RS_AVAILABLE)
    if util.has_progress_deadline(d) and not complete_before:
        rs_name = meta.name(new_rs) if new_rs is not None else ""
        if util.deployment_complete(d, new_status):
            msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if new_rs is not None
                   else f'Deployment "{meta.name(d)}" has successfully progressed.')
            util.set_condition(new_status, util.new_condition("Progressing", "True", util.NEW_RS_AVAILABLE, msg, now))
        elif util.deployment_progressing(d, new_status):
            msg = (f'ReplicaSet "{rs_name}" is progressing.' if new_rs is not None
                   else f'Deployment "{meta.name(d)}" is progressing.')
            cond = util.new_condition("Progressing", "True", util.RS_UPDATED, msg, now)
            # Same reason, fresh lastUpdateTime: progress must push the deadline back,
            # which set_condition alone would not do.
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                util.remove_condition(new_status, "Progressing")
            util.set_condition(new_status, cond)
        elif util.deployment_timed_out(d, new_status, now):
            msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if new_rs is not None
                   else f'Deployment "{meta.name(d)}" has timed out progressing.')
            util.set_condition(new_status, util.new_condition("Progressing", "False", util.TIMED_OUT, msg, now))
        # kubelite's own: NewPodsFailing as soon as the new pods fail (see autorollback.py).
        autorollback.fail_fast(dc, d, new_status, new_rs, now)
    failures = replica_failures(all_rss, new_rs)
    if failures:
        util.set_condition(new_status, failures[0])
    else:
        util.remove_condition(new_status, "ReplicaFailure")
    new_status = sync.normalized_status(new_status)
    if sync.normalized_status(d.get("status")) == new_status:
        requeue_stuck_deployment(dc, d, new_status)
        return
    d["status"] = new_status
    await dc.update_status(d)


def replica_failures(all_rss: Sequence[Obj | None], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions as Deployment conditions, the new RS's first."""
    def of(rs: Obj | None) -> list[Obj]:
        if rs is None:
            return []
        return [util.rs_condition_to_deployment(c) for c in (rs.get("status") or {}).get("conditions") or []
                if c.get("type") == "ReplicaFailure"]
    conds = of(new_rs)
    if conds:
        return conds
    return [c for rs in all_rss for c in of(rs)]


def requeue_stuck_deployment(dc: DeploymentContext, d: Obj, new_status: Obj) -> float:
    """Re-queue for the moment the deadline passes; seconds until then (-1: not needed)."""
    current = util.get_condition(d.get("status"), "Progressing")
    if not util.has_progress_deadline(d) or current is None:
        return -1
    if util.deployment_complete(d, new_status) or current.get("reason") == util.TIMED_OUT:
        return -1
    since = meta.parse_time(current.get("lastUpdateTime"))
    if since is None:
        return -1
    deadline = since + _dt.timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))
    after = (deadline - dc.now()).total_seconds()
    if after < 1:
        dc.enqueue_rate_limited(d)
        return 0
    # One extra second so the check lands after the deadline, not a hair before.
    dc.enqueue_after(d, after + 1)
    return after
