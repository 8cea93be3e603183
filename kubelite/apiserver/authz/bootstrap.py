"""Write the bootstrap policy into the store at start-up, reconciling as upstream does.

A missing role or binding is created.  An existing one is left alone when an
administrator annotated it ``rbac.authorization.kubernetes.io/autoupdate: "false"``;
otherwise missing rules, aggregation selectors and subjects are added (never removed), so
a cluster upgraded to a newer policy gains the new permissions and keeps local additions.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import errors
from kubelite.api.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES, ResourceInfo
from kubelite.apiserver.authz import policy
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]


def _union(existing: list[Any], wanted: list[Any]) -> list[Any]:
    return existing + [w for w in wanted if w not in existing]


def reconcile(current: Obj, expected: Obj) -> Obj | None:
    """The object to write so ``current`` includes ``expected``; None when nothing to do."""
    md = current.setdefault("metadata", {})
    if (md.get("annotations") or {}).get(policy.AUTOUPDATE) == "false":
        return None
    new = dict(current)
    new["metadata"] = dict(md)
    emd = expected["metadata"]
    new["metadata"]["labels"] = {**(md.get("labels") or {}), **emd.get("labels", {})}
    new["metadata"]["annotations"] = {**(md.get("annotations") or {}), **emd.get("annotations", {})}
    if "rules" in expected and "aggregationRule" not in expected:
        new["rules"] = _union(list(current.get("rules") or []), expected["rules"])
    if "aggregationRule" in expected:
        sels = (current.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        new["aggregationRule"] = {"clusterRoleSelectors": _union(list(sels),
                                                                 expected["aggregationRule"]["clusterRoleSelectors"])}
    if "subjects" in expected:
        new["subjects"] = _union(list(current.get("subjects") or []), expected["subjects"])
    return None if new == current else new


async def _ensure(reg: Registry, info: ResourceInfo, obj: Obj) -> None:
    ns = obj["metadata"].get("namespace", "")
    name = obj["metadata"]["name"]
    try:
        current = await reg.get(info, ns, name)
    except errors.NotFound:
        await reg.create(info, ns, obj)
        return
    if (current.get("roleRef") or obj.get("roleRef")) and current.get("roleRef") != obj.get("roleRef"):
        return  # a binding an administrator re-pointed: theirs to keep
    wanted = reconcile(current, obj)
    if wanted is None:
        return

    def mutate(_old: Obj) -> Obj:
        return wanted
    await reg.guaranteed_update(info, ns, name, mutate)


async def ensure_policy(reg: Registry) -> None:
    """Create or reconcile every bootstrap role and binding (idempotent)."""
    for obj in policy.cluster_roles():
        await _ensure(reg, CLUSTERROLES, obj)
    for obj in policy.cluster_role_bindings():
        await _ensure(reg, CLUSTERROLEBINDINGS, obj)
    for obj in policy.namespace_roles():
        await _ensure(reg, ROLES, obj)
    for obj in policy.namespace_role_bindings():
        await _ensure(reg, ROLEBINDINGS, obj)
