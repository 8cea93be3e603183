"""RollingUpdate (upstream rolling.go): grow the new RS, shrink the old ones, in steps.

One sync does at most one of the two moves, then writes status:

- scale up: the new RS may grow while all pods ≤ replicas + maxSurge;
- scale down: old RSs may shrink by allPods - minAvailable - newRSUnavailable.  First
  unhealthy old replicas go (they cost no availability), then available ones, oldest RS
  first, as far as availablePods - minAvailable allows.

Worked example (10 replicas, maxSurge 3, maxUnavailable 2): the new RS is created
with 3 (13 pods); none of them is available yet, so 13 - 8 - 3 = 2 old pods go
(old 10 → 8); the new RS then grows to 5, and so on as pods become available.  If the
new pods crash-loop, 13 - 8 - 5 = 0: nothing more is removed, availability holds.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubelite.controllers.deployment import history, progress, sync, util
from kubelite.controllers.deployment.context import DeploymentContext

Obj = dict[str, Any]


async def rollout_rolling(dc: DeploymentContext, d: Obj, rs_list: list[Obj]) -> None:
    """One rolling-update step."""
    new_rs, old_rss = await sync.get_all_rss_and_sync_revision(dc, d, rs_list, create=True)
    assert new_rs is not None
    all_rss: list[Obj | None] = [*old_rss, new_rs]
    if await reconcile_new_replicaset(dc, all_rss, new_rs, d):
        await progress.sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if await reconcile_old_replicasets(dc, all_rss, util.filter_active(old_rss), new_rs, d):
        await progress.sync_rollout_status(dc, all_rss, new_rs, d)
        return
    if util.deployment_complete(d, d.get("status") or {}):
        await history.cleanup_deployment(dc, old_rss, d)
    await progress.sync_rollout_status(dc, all_rss, new_rs, d)


async def reconcile_new_replicaset(dc: DeploymentContext, all_rss: Sequence[Obj | None], new_rs: Obj,
                                   d: Obj) -> bool:
    """Grow (or trim) the new RS; True if it was resized."""
    want = util.replicas(d)
    if util.replicas(new_rs) == want:
        return False
    if util.replicas(new_rs) > want:
        scaled, _ = await sync.scale_rs_and_record_event(dc, new_rs, want, d)
        return scaled
    count = util.new_rs_new_replicas(d, all_rss, new_rs)
    scaled, _ = await sync.scale_rs_and_record_event(dc, new_rs, count, d)
    return scaled


async def reconcile_old_replicasets(dc: DeploymentContext, all_rss: Sequence[Obj | None], old_rss: list[Obj],
                                    new_rs: Obj, d: Obj) -> bool:
    """Shrink old RSs as far as availability allows; True if any shrank."""
    if util.replica_count(old_rss) == 0:
        return False
    max_down = util.max_scaled_down(d, all_rss, new_rs)
    if max_down <= 0:
        return False
    # Upstream swallows errors of these two steps (the next sync retries).
    try:
        old_rss, cleaned = await cleanup_unhealthy_replicas(dc, old_rss, d, max_down)
    except Exception:
        return False
    try:
        scaled = await scale_down_old_replicasets(dc, [*old_rss, new_rs], old_rss, d)
    except Exception:
        return False
    return cleaned + scaled > 0


async def cleanup_unhealthy_replicas(dc: DeploymentContext, old_rss: list[Obj], d: Obj,
                                     max_cleanup: int) -> tuple[list[Obj], int]:
    """Remove unavailable replicas of old RSs (oldest first), at most ``max_cleanup``."""
    old_rss = util.by_creation(old_rss)
    total = 0
    for i, rs in enumerate(old_rss):
        if total >= max_cleanup:
            break
        size, avail = util.replicas(rs), util.status_int(rs, "availableReplicas")
        if size == 0 or size == avail:
            continue
        down = min(max_cleanup - total, size - avail)
        new_size = size - down
        if new_size > size:
            raise ValueError(f"invalid request to scale down {rs['metadata']['name']} {size} -> {new_size}")
        _, updated = await sync.scale_rs_and_record_event(dc, rs, new_size, d)
        total += down
        old_rss[i] = updated
    return old_rss, total


async def scale_down_old_replicasets(dc: DeploymentContext, all_rss: Sequence[Obj | None], old_rss: list[Obj],
                                     d: Obj) -> int:
    """Remove available old replicas down to minAvailable, oldest RS first."""
    min_avail = util.replicas(d) - util.max_unavailable(d)
    available = util.available_replica_count(all_rss)
    if available <= min_avail:
        return 0
    target = available - min_avail
    total = 0
    for rs in util.by_creation(old_rss):
        if total >= target:
            break
        size = util.replicas(rs)
        if size == 0:
            continue
        down = min(size, target - total)
        await sync.scale_rs_and_record_event(dc, rs, size - down, d)
        total += down
    return total
