"""The RBAC authorizer: Roles, ClusterRoles and their bindings, read from the store.

The API server owns the store, so the authorizer keeps an in-memory snapshot of the four
RBAC kinds instead of an informer.  The snapshot is rebuilt lazily after it is marked
stale; it is marked stale by the API server right after any write to the RBAC group
succeeds (so a client that has just created a RoleBinding is judged by it on its next
request) and, as a backstop, by a store watch on the RBAC prefix (writes the server makes
without a request, such as bootstrap policy).

Bindings are indexed by subject, so judging a request costs a few dictionary lookups and
a scan of the rules of the bindings that name the user, one of its groups or its
ServiceAccount.  ClusterRoleBindings are consulted first, then the RoleBindings of the
request's namespace, and the first rule that allows the request decides; the reason
names that binding as upstream does (``RBAC: allowed by ClusterRoleBinding "x" of
ClusterRole "y" to Group "z"``).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubelite.api.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES
from kubelite.apiserver.authn import User
from kubelite.apiserver.authz.attributes import Attributes
from kubelite.apiserver.authz.chain import Decision, Verdict
from kubelite.apiserver.authz.rules import Rule, rule_allows
from kubelite.apiserver.registry import Registry
from kubelite.apiserver.tokens import split_sa_username
from kubelite.store.base import Compacted

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PREFIX = "/registry/rbac.authorization.k8s.io/"

SubjectKey = tuple[str, ...]


@dataclass(frozen=True)
class Grant:
    """One binding naming one subject: where its rules come from and how to describe it."""

    binding_kind: str   # RoleBinding | ClusterRoleBinding
    binding_name: str   # "name" or "name/namespace"
    namespace: str      # the binding's namespace ("" for ClusterRoleBindings)
    role_kind: str      # Role | ClusterRole
    role_name: str
    subject: str        # 'User "alice"', 'ServiceAccount "default/ns"'

    def describe(self) -> str:
        """``ClusterRoleBinding "x" of ClusterRole "y" to Group "z"``."""
        return f'{self.binding_kind} "{self.binding_name}" of {self.role_kind} "{self.role_name}" to {self.subject}'


@dataclass
class Snapshot:
    """Every Role, ClusterRole and binding, indexed for lookups by subject."""

    cluster_roles: dict[str, list[Rule]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[Rule]] = field(default_factory=dict)
    cluster_grants: dict[SubjectKey, list[Grant]] = field(default_factory=dict)
    namespace_grants: dict[str, dict[SubjectKey, list[Grant]]] = field(default_factory=dict)


def _subject_key(s: Obj, binding_ns: str) -> tuple[SubjectKey, str] | None:
    """The index key of a binding subject and its description, or None if unusable."""
    kind, name = s.get("kind"), s.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind == "ServiceAccount":
        ns = s.get("namespace") or binding_ns
        return ("ServiceAccount", str(ns), name), f'ServiceAccount "{name}/{ns}"'
    if kind in ("User", "Group"):
        return (str(kind), name), f'{kind} "{name}"'
    return None


def _rules(obj: Obj) -> list[Rule]:
    return [r for r in obj.get("rules") or [] if isinstance(r, dict)]


def build_snapshot(cluster_roles: list[Obj], roles: list[Obj], cluster_bindings: list[Obj],
                   bindings: list[Obj]) -> Snapshot:
    """Index the four kinds (pure; used by the cache and by tests)."""
    snap = Snapshot()
    for cr in cluster_roles:
        snap.cluster_roles[cr["metadata"]["name"]] = _rules(cr)
    for r in roles:
        snap.roles[(r["metadata"].get("namespace", ""), r["metadata"]["name"])] = _rules(r)
    for b in cluster_bindings + bindings:
        md = b.get("metadata") or {}
        ns = md.get("namespace") or ""
        ref = b.get("roleRef") or {}
        is_cluster = b.get("kind") == "ClusterRoleBinding" or not ns
        index = snap.cluster_grants if is_cluster else snap.namespace_grants.setdefault(ns, {})
        for s in b.get("subjects") or []:
            if not isinstance(s, dict):
                continue
            keyed = _subject_key(s, ns)
            if keyed is None:
                continue
            key, desc = keyed
            grant = Grant("ClusterRoleBinding" if is_cluster else "RoleBinding",
                          md.get("name", "") if is_cluster else f"{md.get('name', '')}/{ns}", ns,
                          str(ref.get("kind") or ""), str(ref.get("name") or ""), desc)
            index.setdefault(key, []).append(grant)
    return snap


def user_keys(user: User) -> list[SubjectKey]:
    """The subject keys that name this user: its name, its groups, its ServiceAccount."""
    keys: list[SubjectKey] = [("User", user.name)]
    keys.extend(("Group", g) for g in user.groups)
    sa = split_sa_username(user.name)
    if sa is not None:
        keys.append(("ServiceAccount", sa[0], sa[1]))
    return keys


class RBACCache:
    """The snapshot, rebuilt from the store when marked stale."""

    def __init__(self, registry: Registry):
        self._registry = registry
        self._snapshot = Snapshot()
        self._stale = True
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Rebuild before the next decision (an RBAC object changed)."""
        self._stale = True

    async def snapshot(self) -> Snapshot:
        """The current snapshot, rebuilt first if stale."""
        # While a rebuild is under way the old snapshot is out of date too: wait for the new
        # one (a store whose reads really suspend, as etcd's do, lets requests in meanwhile).
        if self._stale or self._lock.locked():
            async with self._lock:
                if self._stale:
                    # Cleared before reading: a write that lands during the reload marks it again.
                    self._stale = False
                    try:
                        self._snapshot = await self._load()
                    except BaseException:
                        self._stale = True
                        raise
        return self._snapshot

    async def _load(self) -> Snapshot:
        reg = self._registry
        crs, _, _, _ = await reg.list(CLUSTERROLES, "")
        rs, _, _, _ = await reg.list(ROLES, "")
        crbs, _, _, _ = await reg.list(CLUSTERROLEBINDINGS, "")
        rbs, _, _, _ = await reg.list(ROLEBINDINGS, "")
        return build_snapshot(crs, rs, crbs, rbs)

    async def watch(self) -> None:
        """Mark the snapshot stale on every change under the RBAC prefix (runs until cancelled)."""
        store = self._registry.store
        while True:
            try:
                w = store.watch(PREFIX, store.revision)
            except Compacted:
                await asyncio.sleep(0.1)
                continue
            self.invalidate()
            try:
                async for _ in w:
                    self.invalidate()
            finally:
                w.close()


class SnapshotSource(Protocol):
    """Where the authorizer gets the current snapshot (``RBACCache``, or a fixed one in tests)."""

    async def snapshot(self) -> Snapshot:
        """The current snapshot."""
        ...


class RBACAuthorizer:
    """Decides from the snapshot; also answers "which rules does this user have here"."""

    def __init__(self, cache: SnapshotSource):
        self.cache = cache

    async def authorize(self, a: Attributes) -> Verdict:
        """Allow if a rule of a binding naming the user allows the request; else no opinion."""
        snap = await self.cache.snapshot()
        errors: list[str] = []
        for grant, rules in self._grants(snap, a.user, a.namespace if a.resource_request else "", errors):
            if any(rule_allows(r, a) for r in rules):
                return Verdict(Decision.ALLOW, f"RBAC: allowed by {grant.describe()}")
        reason = ""
        if errors:
            reason = "RBAC: " + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        return Verdict(Decision.NO_OPINION, reason)

    async def rules_for(self, user: User, namespace: str) -> tuple[list[Rule], list[str]]:
        """Every rule the user holds in ``namespace`` ("" = cluster-wide only), and errors
        for bindings whose role is missing."""
        snap = await self.cache.snapshot()
        errors: list[str] = []
        out: list[Rule] = []
        for _, rules in self._grants(snap, user, namespace, errors):
            out.extend(rules)
        return out, errors

    async def role_rules(self, kind: str, namespace: str, name: str) -> list[Rule] | None:
        """The rules of a Role (in ``namespace``) or ClusterRole; None if it does not exist."""
        snap = await self.cache.snapshot()
        if kind == "ClusterRole":
            return snap.cluster_roles.get(name)
        return snap.roles.get((namespace, name))

    @staticmethod
    def _grants(snap: Snapshot, user: User, namespace: str,
                errors: list[str]) -> Iterator[tuple[Grant, list[Rule]]]:
        keys = user_keys(user)
        sources = [snap.cluster_grants]
        if namespace:
            sources.append(snap.namespace_grants.get(namespace, {}))
        for index in sources:
            for key in keys:
                for grant in index.get(key, ()):
                    if grant.role_kind == "ClusterRole":
                        rules = snap.cluster_roles.get(grant.role_name)
                        missing = f'clusterrole.rbac.authorization.k8s.io "{grant.role_name}" not found'
                    elif grant.role_kind == "Role" and grant.namespace:
                        rules = snap.roles.get((grant.namespace, grant.role_name))
                        missing = f'role.rbac.authorization.k8s.io "{grant.role_name}" not found'
                    else:
                        continue
                    if rules is None:
                        if missing not in errors:
                            errors.append(missing)
                        continue
                    yield grant, rules
