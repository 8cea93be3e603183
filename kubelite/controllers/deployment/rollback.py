"""Rollback (upstream rollback.go).

apps/v1 has no spec.rollbackTo: `kubectl rollout undo` patches the Deployment's
template back to an old RS's template, and the ordinary rollout finds that RS as the
"new" one and raises its revision (sync.get_new_replicaset, moving the old number into
deployment.kubernetes.io/revision-history).  What remains here is the deprecated
``deprecated.deployment.rollback.to`` annotation, which older API versions used to
round-trip rollbackTo: the controller copies the requested revision's template and
annotations onto the Deployment and clears the annotation.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import meta
from kubelite.controllers.deployment import sync, util
from kubelite.controllers.deployment.context import DeploymentContext

Obj = dict[str, Any]


def get_rollback_to(d: Obj) -> int | None:
    """The revision the deprecated annotation asks for (0 = previous), or None."""
    v = meta.annotations_of(d).get(util.DEPRECATED_ROLLBACK_TO)
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        return None


async def rollback(dc: DeploymentContext, d: Obj, rs_list: list[Obj]) -> None:
    """Roll the template back to the requested revision, then clear the request."""
    new_rs, old_rss = await sync.get_all_rss_and_sync_revision(dc, d, rs_list, create=True)
    all_rss = old_rss + [new_rs]
    target = get_rollback_to(d) or 0
    if target == 0:
        target = util.last_revision(all_rss)
        if target == 0:
            dc.event(d, "Warning", util.ROLLBACK_NOT_FOUND, "Unable to find last revision.")
            await _clear_rollback_to(dc, d)
            return
    for rs in all_rss:
        if rs is None:
            continue
        try:
            rev = util.revision(rs)
        except ValueError:
            continue
        if rev == target:
            if await rollback_to_template(dc, d, rs):
                dc.event(d, "Normal", util.ROLLBACK_DONE, f'Rolled back deployment "{meta.name(d)}" to revision {target}')
            return
    dc.event(d, "Warning", util.ROLLBACK_NOT_FOUND, "Unable to find the revision to rollback to.")
    await _clear_rollback_to(dc, d)


async def rollback_to_template(dc: DeploymentContext, d: Obj, rs: Obj) -> bool:
    """Copy the RS's template and change-cause onto the Deployment; True if it differed."""
    performed = False
    if not util.equal_ignore_hash(d.get("spec", {}).get("template"), rs.get("spec", {}).get("template")):
        util.set_from_rs_template(d, rs["spec"]["template"])
        # The Deployment takes the RS's annotations, or the rolled-back-to RS would be
        # stamped with the change-cause of the revision we are leaving.
        util.set_deployment_annotations_to(d, rs)
        performed = True
    else:
        dc.event(d, "Warning", util.ROLLBACK_UNCHANGED,
                 f'The rollback revision contains the same template as current deployment "{meta.name(d)}"')
    await _clear_rollback_to(dc, d)
    return performed


async def _clear_rollback_to(dc: DeploymentContext, d: Obj) -> None:
    meta.meta(d).setdefault("annotations", {}).pop(util.DEPRECATED_ROLLBACK_TO, None)
    await dc.update(d)
