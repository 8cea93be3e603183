"""The dashboard's buttons: what `kubectl rollout pause|resume|undo` do, as an API client.

pause and resume are the patches kubectl sends (``spec.paused``), refused the way
kubectl refuses them when there is nothing to change.  undo is kubectl's client-side
rollback, since apps/v1 has no rollback subresource: pick the ReplicaSet of the previous
revision (the controller's ``util.last_revision``) or of the one asked for, and send one JSON patch that puts its pod template
(minus the pod-template-hash label) and its annotations back on the Deployment.  The
choice is the pure ``plan_undo``; the functions below it only read and write.
"""
from __future__ import annotations

import copy
from typing import Any, NamedTuple

from kubelite.api import meta, resources
from kubelite.api.errors import BadRequest, Conflict, NotFound
from kubelite.client.protocols import APIClient
from kubelite.controllers.deployment import util

Obj = dict[str, Any]

ACTIONS = ("pause", "resume", "undo")


class UndoPlan(NamedTuple):
    """What an undo sends: a JSON patch (None: nothing to do) and the line to show."""

    patch: list[Obj] | None
    message: str


def _revision(rs: Obj) -> int | None:
    try:
        return util.revision(rs)
    except ValueError:
        return None  # kubectl skips ReplicaSets whose revision does not parse


def pick_revision(d: Obj, rss: list[Obj], to_revision: int) -> Obj:
    """The ReplicaSet to go back to: revision ``to_revision``, or (0) the controller's last revision."""
    name = meta.name(d)
    if to_revision < 0:
        raise BadRequest(400, "BadRequest", f"unable to find specified revision {to_revision} in history")
    wanted = to_revision or util.last_revision(rss)
    if not wanted:
        raise Conflict(409, "Conflict", f'no rollout history found for deployment "{name}"')
    # Keyed by revision, not by list position: ReplicaSets can share a revision (an adopted
    # or hand-made one), and the API lists them in name order.  Like the controller's own
    # rollback, old ReplicaSets come before the current one; among old ones the newest wins.
    new_rs = util.find_new_rs(d, rss)
    old = sorted((rs for rs in rss if new_rs is None or meta.uid(rs) != meta.uid(new_rs)),
                 key=util.creation_key, reverse=True)
    for rs in old + ([new_rs] if new_rs is not None else []):
        if _revision(rs) == wanted:
            return rs
    raise NotFound(404, "NotFound", f"unable to find specified revision {to_revision} in history")


def plan_undo(d: Obj, rss: list[Obj], to_revision: int = 0) -> UndoPlan:
    """kubectl's Deployment rollback, decided: the patch to send, or why not (a StatusError)."""
    name = meta.name(d)
    owned = [rs for rs in rss if (meta.controller_ref(rs) or {}).get("uid") == meta.uid(d)]
    target = pick_revision(d, owned, to_revision)
    if (d.get("spec") or {}).get("paused"):
        raise Conflict(409, "Conflict", "you cannot rollback a paused deployment; resume it first with "
                                        f"'kubectl rollout resume deployment/{name}' and try again")
    rev = _revision(target) or 0
    template = (target.get("spec") or {}).get("template") or {}
    if util.equal_ignore_hash(template, (d.get("spec") or {}).get("template")):
        return UndoPlan(None, f"skipped rollback (current template already matches revision {rev})")
    restored = util.set_from_rs_template(copy.deepcopy(d), template)
    util.set_deployment_annotations_to(restored, target)
    patch = [{"op": "replace", "path": "/spec/template", "value": restored["spec"]["template"]},
             # add, not replace: it also works on a Deployment that has no annotations at all.
             {"op": "add", "path": "/metadata/annotations", "value": meta.annotations_of(restored)}]
    return UndoPlan(patch, f"deployment.apps/{name} rolled back to revision {rev}")


async def _deployment(client: APIClient, namespace: str, name: str) -> Obj:
    return await client.resource(resources.DEPLOYMENTS).get(name, namespace)


async def set_paused(client: APIClient, namespace: str, name: str, paused: bool) -> str:
    """`kubectl rollout pause` (paused) or `resume`: patch spec.paused; a no-op is refused."""
    d = await _deployment(client, namespace, name)
    if bool((d.get("spec") or {}).get("paused")) == paused:
        raise Conflict(409, "Conflict",
                       f'deployments.apps "{name}" is {"already paused" if paused else "not paused"}')
    await client.resource(resources.DEPLOYMENTS).patch(name, {"spec": {"paused": paused}}, namespace,
                                                       patch_type="strategic")
    return f"deployment.apps/{name} {'paused' if paused else 'resumed'}"


async def undo(client: APIClient, namespace: str, name: str, to_revision: int = 0) -> str:
    """`kubectl rollout undo [--to-revision N]`."""
    d = await _deployment(client, namespace, name)
    rss = (await client.resource(resources.REPLICASETS).list(namespace)).get("items") or []
    plan = plan_undo(d, rss, to_revision)
    if plan.patch is not None:
        await client.resource(resources.DEPLOYMENTS).patch(name, plan.patch, namespace, patch_type="json")
    return plan.message


async def run_action(client: APIClient, namespace: str, name: str, action: str, to_revision: int = 0) -> str:
    """Do one of ACTIONS; the line to show, or a StatusError."""
    if action == "pause":
        return await set_paused(client, namespace, name, True)
    if action == "resume":
        return await set_paused(client, namespace, name, False)
    if action == "undo":
        return await undo(client, namespace, name, to_revision)
    raise NotFound(404, "NotFound", f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
