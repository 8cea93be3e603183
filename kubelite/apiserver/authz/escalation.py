"""RBAC escalation prevention: nobody grants permissions they do not hold.

As upstream's policy-based RBAC storage:

* writing a Role or ClusterRole needs the ``escalate`` verb on it, or every rule of the
  new object must already be granted to the writer (in the Role's namespace; cluster-wide
  for a ClusterRole);
* writing a RoleBinding or ClusterRoleBinding needs the ``bind`` verb on the role it
  references, or the writer must already hold every rule of that role (in the binding's
  namespace; cluster-wide for a ClusterRoleBinding);
* ``system:masters`` may always; a write that only changes ownerReferences or finalizers
  (the garbage collector's) is never checked.

The writer is the request's user, which the API server puts in ``current_user`` before
it calls the handler; writes the server makes itself (bootstrap) have no user and pass.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import errors
from kubelite.api.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES, ResourceInfo
from kubelite.apiserver.authn import MASTERS, User
from kubelite.apiserver.authz.attributes import Attributes
from kubelite.apiserver.authz.chain import Authorizer
from kubelite.apiserver.authz.rbac import RBACAuthorizer
from kubelite.apiserver.authz.rules import Rule, compact, uncovered

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
_GC_FIELDS = ("ownerReferences", "finalizers", "resourceVersion", "managedFields", "generation")


def only_gc_fields_changed(new: Obj, old: Obj) -> bool:
    """True when the write changes nothing but ownerReferences and finalizers."""
    def strip(o: Obj) -> Obj:
        md = {k: v for k, v in (o.get("metadata") or {}).items() if k not in _GC_FIELDS}
        return {**o, "metadata": md}
    return strip(new) == strip(old)


def _compact_missing(missing: list[Rule]) -> list[str]:
    """One line per (groups, resources, names / URLs) with the verbs merged, sorted."""
    merged: dict[str, Rule] = {}
    for atom in missing:
        key = repr({k: v for k, v in atom.items() if k != "verbs"})
        if key in merged:
            merged[key]["verbs"] = merged[key]["verbs"] + [v for v in atom["verbs"] if v not in merged[key]["verbs"]]
        else:
            merged[key] = {**atom, "verbs": list(atom["verbs"])}
    return sorted(compact(r) for r in merged.values())


def _go_quoted_list(values: list[str]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


class EscalationCheck:
    """The admission step for writes of the four RBAC kinds."""

    def __init__(self, authorizer: Authorizer, rbac: RBACAuthorizer):
        self.authorizer = authorizer
        self.rbac = rbac

    async def admit(self, info: ResourceInfo, obj: Obj, old: Obj | None, user: User | None) -> None:
        """Raise 403 Forbidden when ``user`` would grant more than it holds."""
        if user is None or MASTERS in user.groups:
            return
        if info not in (ROLES, CLUSTERROLES, ROLEBINDINGS, CLUSTERROLEBINDINGS):
            return
        if old is not None and only_gc_fields_changed(obj, old):
            return
        md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        assert isinstance(md, dict)
        name = str(md.get("name") or "")
        ns = str(md.get("namespace") or "") if info.namespaced else ""
        if info in (ROLES, CLUSTERROLES):
            if await self._allowed(user, "escalate", info.plural, ns, name):
                return
            rules_in = obj.get("rules")
            wanted = [r for r in rules_in if isinstance(r, dict)] if isinstance(rules_in, list) else []
        else:
            ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
            assert isinstance(ref, dict)
            kind, role = str(ref.get("kind") or ""), str(ref.get("name") or "")
            if kind not in ("Role", "ClusterRole") or not role:
                return  # validation answers 422 for a malformed roleRef
            # Checked in the binding's namespace, so "bind" on a ClusterRole may be delegated
            # for RoleBindings of one namespace only.
            if await self._allowed(user, "bind", "roles" if kind == "Role" else "clusterroles", ns, role):
                return
            rules = await self.rbac.role_rules(kind, ns, role)
            if rules is None:
                plural = "roles" if kind == "Role" else "clusterroles"
                raise errors.not_found(plural, GROUP, role)
            wanted = rules
        held, resolution_errors = await self.rbac.rules_for(user, ns)
        missing = uncovered(held, wanted)
        if not missing:
            return
        msg = (f'user "{user.name}" (groups={_go_quoted_list(user.groups)}) is attempting to grant RBAC '
               "permissions not currently held:\n" + "\n".join(_compact_missing(missing)))
        if resolution_errors:
            msg += f"; resolution errors: [{', '.join(resolution_errors)}]"
        raise errors.status_error(403, "Forbidden", f'{info.plural}.{GROUP} "{name}" is forbidden: {msg}',
                                  {"name": name, "group": GROUP, "kind": info.plural})

    async def _allowed(self, user: User, verb: str, plural: str, ns: str, name: str) -> bool:
        a = Attributes(user, verb, True, namespace=ns, api_group=GROUP, api_version="v1", resource=plural, name=name)
        return (await self.authorizer.authorize(a)).allowed
