"""Recreate (upstream recreate.go): all old pods gone before any new pod exists.

Each sync: scale every old RS to 0 (and stop there if anything changed); wait while
any old RS still reports replicas or any pod of an old RS is not yet terminal; only
then create the new RS (if needed) and scale it straight to spec.replicas.  The pod
delete handler re-queues the Deployment when its last old pod disappears.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import meta
from kubelite.controllers.deployment import history, progress, sync, util
from kubelite.controllers.deployment.context import DeploymentContext

Obj = dict[str, Any]


async def rollout_recreate(dc: DeploymentContext, d: Obj, rs_list: list[Obj],
                           pod_map: dict[str, list[Obj]]) -> None:
    """One Recreate step."""
    # Never create the new RS up front: that would scale up before scaling down.
    new_rs, old_rss = await sync.get_all_rss_and_sync_revision(dc, d, rs_list, create=False)
    all_rss: list[Obj | None] = [*old_rss, new_rs]
    active_old = util.filter_active(old_rss)
    if await scale_down_old_for_recreate(dc, active_old, d):
        await progress.sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if old_pods_running(new_rs, old_rss, pod_map):
        await progress.sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if new_rs is None:
        new_rs, old_rss = await sync.get_all_rss_and_sync_revision(dc, d, rs_list, create=True)
        all_rss = [*old_rss, new_rs]
    assert new_rs is not None
    await sync.scale_rs_and_record_event(dc, new_rs, util.replicas(d), d)
    if util.deployment_complete(d, d.get("status") or {}):
        await history.cleanup_deployment(dc, old_rss, d)
    await progress.sync_rollout_status(dc, all_rss, new_rs, d)


async def scale_down_old_for_recreate(dc: DeploymentContext, old_rss: list[Obj], d: Obj) -> bool:
    """Scale every old RS to 0; True if any was resized."""
    scaled = False
    for i, rs in enumerate(old_rss):
        if util.replicas(rs) == 0:
            continue
        did, updated = await sync.scale_rs_and_record_event(dc, rs, 0, d)
        if did:
            old_rss[i] = updated
            scaled = True
    return scaled


def old_pods_running(new_rs: Obj | None, old_rss: list[Obj], pod_map: dict[str, list[Obj]]) -> bool:
    """An old RS still reports pods, or an old pod is not Succeeded/Failed yet."""
    if util.actual_replica_count(old_rss) > 0:
        return True
    for rs_uid, pods in pod_map.items():
        if new_rs is not None and meta.uid(new_rs) == rs_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False
