"""The Node authorizer and NodeRestriction admission: what a node agent may touch.

A node agent authenticates as ``system:node:<name>`` in group ``system:nodes``.  Upstream
keeps a graph of pods, nodes and the objects pods reference; kubelite asks the store
directly, which is the same relation computed on demand:

* its own Node (get; list/watch with ``metadata.name=<node>``; create, update, patch,
  status) — never another node's;
* its own Lease in ``kube-node-lease``;
* pods bound to it: get, delete, status updates, evictions; list/watch only with the
  field selector ``spec.nodeName=<node>`` (as upstream's selector authorization);
* secrets and configmaps one of its pods references (volumes, projected volumes,
  env, envFrom, imagePullSecrets), one at a time (get, or list/watch with
  ``metadata.name=<x>``);
* a token for a ServiceAccount one of its pods runs as;
* everything else upstream's node rules grant: services, endpoints (get), events,
  TokenReviews and SubjectAccessReviews.

Refusals are "no opinion" with upstream's reasons, so an administrator may still grant
more through RBAC.  Simplifications (see the README): the graph is not cached, pod
creation is refused outright (kubelite has no static pods, so no mirror pods), and
NodeRestriction's label and taint rules for a node's own Node object are not enforced.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubelite.api import errors
from kubelite.api.resources import NODES, PODS, ResourceInfo
from kubelite.apiserver.authn import User
from kubelite.apiserver.authz.attributes import Attributes, exact_field
from kubelite.apiserver.authz.chain import Decision, Verdict
from kubelite.apiserver.authz.policy import NODE_RULES
from kubelite.apiserver.authz.rules import rules_allow
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
NODE_LEASE_NAMESPACE = "kube-node-lease"

_NO_OPINION = Verdict(Decision.NO_OPINION)


def node_identity(user: User) -> str | None:
    """The node name of a node agent's user, or None for anyone else."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_PREFIX):
        return None
    name = user.name[len(NODE_PREFIX):]
    return name or None


def _no_relationship(node: str) -> Verdict:
    return Verdict(Decision.NO_OPINION, f"no relationship found between node '{node}' and this object")


def _containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield c


def referenced(pod: Obj, kind: str) -> set[str]:
    """Names of the Secrets (kind "secret") or ConfigMaps ("configMap") a pod uses."""
    spec = pod.get("spec") or {}
    names: set[str] = set()
    field_name = "secretName" if kind == "secret" else "name"
    for v in spec.get("volumes") or []:
        src = (v or {}).get(kind)
        if isinstance(src, dict) and src.get(field_name):
            names.add(src[field_name])
        for p in ((v or {}).get("projected") or {}).get("sources") or []:
            ref = (p or {}).get(kind)
            if isinstance(ref, dict) and ref.get("name"):
                names.add(ref["name"])
    key_ref, env_ref = ("secretKeyRef", "secretRef") if kind == "secret" else ("configMapKeyRef", "configMapRef")
    for c in _containers(spec):
        for e in c.get("env") or []:
            ref = ((e or {}).get("valueFrom") or {}).get(key_ref)
            if isinstance(ref, dict) and ref.get("name"):
                names.add(ref["name"])
        for e in c.get("envFrom") or []:
            ref = (e or {}).get(env_ref)
            if isinstance(ref, dict) and ref.get("name"):
                names.add(ref["name"])
    if kind == "secret":
        names.update(str(s["name"]) for s in spec.get("imagePullSecrets") or [] if isinstance(s, dict) and s.get("name"))
    return names


class NodeAuthorizer:
    """Judges requests of node agents; no opinion on anyone else."""

    def __init__(self, registry: Registry):
        self.registry = registry

    async def authorize(self, a: Attributes) -> Verdict:
        """The node rules, narrowed to the node's own objects."""
        node = node_identity(a.user)
        if node is None or not a.resource_request:
            return _NO_OPINION
        if a.api_group == "":
            if a.resource in ("secrets", "configmaps") and not a.subresource:
                return await self._referenced_object(node, a)
            if a.resource == "pods":
                return await self._pod(node, a)
            if a.resource == "nodes":
                return self._node(node, a)
            if a.resource == "serviceaccounts" and a.subresource == "token":
                return await self._token(node, a)
        if a.api_group == "coordination.k8s.io" and a.resource == "leases":
            return self._lease(node, a)
        return Verdict(Decision.ALLOW) if rules_allow(NODE_RULES, a) else _NO_OPINION

    # -- objects reached through pods ---------------------------------------------------------
    async def _pods_on(self, node: str, namespace: str) -> list[Obj]:
        items, _, _, _ = await self.registry.list(PODS, namespace)
        return [p for p in items if (p.get("spec") or {}).get("nodeName") == node]

    async def _referenced_object(self, node: str, a: Attributes) -> Verdict:
        # get, or list/watch narrowed to one object by metadata.name (the kubelet watches
        # each ConfigMap and Secret its pods' volumes read).
        if a.verb not in ("get", "list", "watch"):
            return Verdict(Decision.NO_OPINION, "can only read resources of this type")
        if not a.name:
            return Verdict(Decision.NO_OPINION, "No Object name found")
        kind = "secret" if a.resource == "secrets" else "configMap"
        for pod in await self._pods_on(node, a.namespace):
            if a.name in referenced(pod, kind):
                return Verdict(Decision.ALLOW)
        return _no_relationship(node)

    async def _token(self, node: str, a: Attributes) -> Verdict:
        if a.verb != "create":
            return _NO_OPINION
        for pod in await self._pods_on(node, a.namespace):
            if ((pod.get("spec") or {}).get("serviceAccountName") or "default") == a.name:
                return Verdict(Decision.ALLOW)
        return _no_relationship(node)

    async def _bound_here(self, node: str, a: Attributes, *, missing: bool) -> bool:
        """Is the named pod bound to ``node``?  ``missing`` is the answer for a pod that
        does not exist (writes then get upstream's 404 from the handler; reads stay 403)."""
        try:
            obj = await self.registry.get(PODS, a.namespace, a.name)
        except errors.NotFound:
            return missing
        return (obj.get("spec") or {}).get("nodeName") == node

    async def _pod(self, node: str, a: Attributes) -> Verdict:
        sub, verb = a.subresource, a.verb
        if sub == "" and verb in ("list", "watch"):
            if exact_field(a.field_selector, "spec.nodeName") == node:
                return Verdict(Decision.ALLOW)
            return Verdict(Decision.NO_OPINION, "can only list/watch pods with spec.nodeName field selector")
        if sub == "" and verb == "create":
            return Verdict(Decision.ALLOW)  # NodeRestriction admission decides on the object
        allowed = {"": ("get", "delete"), "status": ("get", "update", "patch"), "eviction": ("create",)}
        if verb not in allowed.get(sub, ()) or not a.name:
            return _NO_OPINION
        bound = await self._bound_here(node, a, missing=verb != "get")
        return Verdict(Decision.ALLOW) if bound else _no_relationship(node)

    # -- the node's own objects ---------------------------------------------------------------
    @staticmethod
    def _node(node: str, a: Attributes) -> Verdict:
        if a.subresource not in ("", "status"):
            return _NO_OPINION
        if a.verb == "create" and a.subresource == "":
            return Verdict(Decision.ALLOW)  # NodeRestriction admission checks the name
        if a.verb not in ("get", "list", "watch", "update", "patch"):
            return _NO_OPINION
        if a.name != node:
            return Verdict(Decision.NO_OPINION, f"node '{node}' cannot read or modify node '{a.name}'"
                           if a.name else "can only list/watch its own node with metadata.name field selector")
        return Verdict(Decision.ALLOW)

    @staticmethod
    def _lease(node: str, a: Attributes) -> Verdict:
        if a.verb not in ("get", "create", "update", "patch", "delete"):
            return Verdict(Decision.NO_OPINION, "can only get, create, update, patch, or delete a node lease")
        if a.namespace != NODE_LEASE_NAMESPACE:
            return Verdict(Decision.NO_OPINION, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
        if a.verb != "create" and a.name != node:
            return Verdict(Decision.NO_OPINION, "can only access node lease with the same name as the requesting node")
        return Verdict(Decision.ALLOW)


async def node_restriction(info: ResourceInfo, obj: Obj, old: Obj | None, user: User | None) -> None:
    """NodeRestriction admission for creates a node makes: only its own Node and Lease,
    and no pods (kubelite has no static pods to mirror)."""
    if user is None or old is not None:
        return
    node = node_identity(user)
    if node is None:
        return
    md = obj.get("metadata")
    name = str(md.get("name") or "") if isinstance(md, dict) else ""
    if info is NODES and name != node:
        raise errors.forbidden(f'nodes "{name}" is forbidden: node "{node}" is not allowed to modify node "{name}"')
    if info is PODS:
        raise errors.forbidden(f'pods "{name}" is forbidden: pod does not have "kubernetes.io/config.mirror" '
                               f'annotation, node "{node}" can only create mirror pods')
    if info.group == "coordination.k8s.io" and info.plural == "leases" and name != node:
        raise errors.forbidden(f'leases.coordination.k8s.io "{name}" is forbidden: '
                               f'can only access node lease with the same name as the requesting node')
