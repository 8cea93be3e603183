"""Garbage collector: ownerReferences across every resource kubelite serves.

Upstream twin: ``pkg/controller/garbagecollector`` (``graph_builder.go`` builds the
dependency graph from informer events, ``garbagecollector.go`` works two queues).

Design:
- One shared informer per resource that answers list+watch (events excepted, as
  upstream's default ignored resources).  Their handlers feed ``DependencyGraph``: for
  each uid, the object's identity and owners, and for each owner uid, its dependents.
  Handlers only update the graph and enqueue uids; they never call the API.
- ``attempt_to_delete`` (a uid queue, several workers) re-reads the object live and
  classifies each owner as *solid* (exists), *dangling* (no object with that uid) or
  *waiting* (being deleted in the foreground).  With no solid owner it is deleted;
  with a solid owner, references to dangling/waiting owners are dropped.  An object
  that is itself being deleted in the foreground waits for its blocking dependents
  (``blockOwnerDeletion``) and then loses its ``foregroundDeletion`` finalizer.
- ``attempt_to_orphan`` (a second queue) handles owners carrying the ``orphan``
  finalizer: their reference is removed from every dependent, then the finalizer.
- Owners missing from the graph are confirmed with a live GET (by name, comparing uid)
  before a dependent is deleted, since the owner's watch may simply be behind the
  dependent's; a uid confirmed absent stays absent (uids are never reused).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import RESOURCES, ResourceInfo, by_kind
from kubelite.apiextensions.tracker import CustomResourceTracker
from kubelite.client.errors import Conflict, NotFound
from kubelite.client.protocols import AddFunc, APIClient, SharedInformer, SharedInformerFactory, UpdateFunc
from kubelite.client.retry import with_retries
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# Upstream's DefaultIgnoredResources: events churn and are never owners in practice.
IGNORED = {("", "events"), ("events.k8s.io", "events")}
_ABSENT_CACHE_SIZE = 4096
# Requests refused for a passing reason (429 under load, 5xx, a dropped connection) are
# retried inside the sync, as client-go's REST client does (10 tries).  Counted as sync
# failures instead, a few 429s in a row grew a key's queue back-off to minutes: pods of
# a deleted ReplicaSet stayed for minutes on a busy cluster.
API_ATTEMPTS = 10


def gc_resources() -> list[ResourceInfo]:
    """Every resource the collector watches: list, watch and delete verbs, not ignored."""
    return [r for r in RESOURCES
            if {"list", "watch", "delete"} <= set(r.verbs) and (r.group, r.plural) not in IGNORED]


def owner_refs(obj: Obj) -> list[Obj]:
    """metadata.ownerReferences (never None)."""
    return obj.get("metadata", {}).get("ownerReferences") or []


def finalizers(obj: Obj) -> list[str]:
    """metadata.finalizers (never None)."""
    return obj.get("metadata", {}).get("finalizers") or []


def deleting_dependents(obj: Obj) -> bool:
    """Being deleted in the foreground: deletionTimestamp plus the foregroundDeletion finalizer."""
    return meta.is_deleting(obj) and FOREGROUND in finalizers(obj)


def orphaning(obj: Obj) -> bool:
    """Being deleted with its dependents orphaned."""
    return meta.is_deleting(obj) and ORPHAN in finalizers(obj)


@dataclass
class GraphNode:
    """One object in the dependency graph."""

    info: ResourceInfo
    obj: Obj
    owners: frozenset[str] = frozenset()


@dataclass
class DependencyGraph:
    """uid → node, and owner uid → dependent uids (owners may be absent: virtual)."""

    nodes: dict[str, GraphNode] = field(default_factory=dict)
    dependents: dict[str, set[str]] = field(default_factory=dict)

    def put(self, info: ResourceInfo, obj: Obj) -> frozenset[str]:
        """Insert or replace an object; returns the owner uids it had before."""
        uid = meta.uid(obj)
        old = self.nodes.get(uid)
        before = old.owners if old else frozenset()
        after = frozenset(r.get("uid", "") for r in owner_refs(obj) if r.get("uid"))
        for o in before - after:
            self._unlink(o, uid)
        for o in after - before:
            self.dependents.setdefault(o, set()).add(uid)
        self.nodes[uid] = GraphNode(info, obj, after)
        return before

    def remove(self, uid: str) -> GraphNode | None:
        """Drop an object (its dependents keep pointing at the now absent uid)."""
        node = self.nodes.pop(uid, None)
        if node is not None:
            for o in node.owners:
                self._unlink(o, uid)
        return node

    def _unlink(self, owner: str, dep: str) -> None:
        deps = self.dependents.get(owner)
        if deps is not None:
            deps.discard(dep)
            if not deps:
                del self.dependents[owner]

    def dependents_of(self, uid: str) -> list[GraphNode]:
        """The present dependents of an owner uid."""
        return [self.nodes[d] for d in self.dependents.get(uid, ()) if d in self.nodes]

    def blocking_dependents(self, uid: str) -> list[GraphNode]:
        """Dependents whose reference to ``uid`` has blockOwnerDeletion: true."""
        return [d for d in self.dependents_of(uid)
                if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in owner_refs(d.obj))]


class GarbageCollectorController:
    """Deletes dependents whose owners are gone; runs foreground and orphan deletion."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, delete_workers: int = 8,
                 orphan_workers: int = 2, resources: Iterable[ResourceInfo] | None = None):
        self.client = client
        self.graph = DependencyGraph()
        self.attempt_to_delete = WorkQueue("garbagecollector-delete")
        self.attempt_to_orphan = WorkQueue("garbagecollector-orphan")
        self.delete_workers = delete_workers
        self.orphan_workers = orphan_workers
        self._absent: dict[str, None] = {}  # insertion-ordered set of owner uids known gone
        self.informers: list[SharedInformer] = []
        self._factory = factory
        self._running = False
        self._watched: dict[tuple[str, str, str], SharedInformer] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        for info in resources if resources is not None else gc_resources():
            self._watch(info)
        # Custom resources come and go with their CRDs (upstream: the periodic discovery
        # resync); a fixed resource list (tests) means no custom ones.
        self.custom = CustomResourceTracker(factory, self._watch, self._unwatch) if resources is None else None

    def _watch(self, info: ResourceInfo) -> None:
        """Monitor one more resource (started at once when the collector already runs)."""
        inf = self._watched.get(info.gvr)
        if inf is None:
            inf = self._watched[info.gvr] = self._factory.informer(info)
            inf.add_handler(self._adder(info), self._updater(info), self._on_delete)
            self.informers.append(inf)
        if self._running:
            inf.start()  # also restarts the informer of a CRD deleted and created again

    def _unwatch(self, info: ResourceInfo) -> None:
        """A custom resource is no longer served: stop its informer, which would only retry."""
        stop = getattr(self._watched.get(info.gvr), "stop", None)  # the protocol has no stop
        if stop is not None:
            task = asyncio.get_running_loop().create_task(stop())
            self._stopping.add(task)  # held until done, so the task is not collected early
            task.add_done_callback(self._stopping.discard)

    def _by_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        """The resource of an ownerReference's apiVersion and kind, custom ones included."""
        if self.custom is not None:
            return self.custom.by_kind(api_version, kind)
        return by_kind(api_version, kind)

    # -- graph builder: handlers only update the graph and enqueue ---------------------
    def _adder(self, info: ResourceInfo) -> AddFunc:
        return lambda obj: self._on_change(info, None, obj)

    def _updater(self, info: ResourceInfo) -> UpdateFunc:
        return lambda old, new: self._on_change(info, old, new)

    def _on_change(self, info: ResourceInfo, old: Obj | None, obj: Obj) -> None:
        uid = meta.uid(obj)
        if not uid:
            return
        before = self.graph.put(info, obj)
        now = self.graph.nodes[uid].owners
        if orphaning(obj):
            self.attempt_to_orphan.add(uid)
        if deleting_dependents(obj):
            # Foreground deletion: every dependent goes; the owner waits for blocking ones.
            self.attempt_to_delete.add(uid)
            for dep in self.graph.dependents_of(uid):
                self.attempt_to_delete.add(meta.uid(dep.obj))
        # An owner we have not seen: verify it (the owner's watch may only be late).
        if any(r.get("uid") not in self.graph.nodes and self._by_kind(r.get("apiVersion", ""), r.get("kind", ""))
               for r in owner_refs(obj)):
            self.attempt_to_delete.add(uid)
        # A reference dropped, or blockOwnerDeletion changed: owners in the foreground re-check.
        changed = before ^ now
        if old is not None and owner_refs(old) != owner_refs(obj):
            changed |= before | now
        for o in changed:
            node = self.graph.nodes.get(o)
            if node is not None and deleting_dependents(node.obj):
                self.attempt_to_delete.add(o)
        # A dependent of a foreground owner that appears is deleted too.
        for o in now - before:
            node = self.graph.nodes.get(o)
            if node is not None and deleting_dependents(node.obj):
                self.attempt_to_delete.add(uid)

    def _on_delete(self, obj: Obj) -> None:
        uid = meta.uid(obj)
        node = self.graph.remove(uid)
        for dep in self.graph.dependents_of(uid):
            self.attempt_to_delete.add(meta.uid(dep.obj))
        for o in (node.owners if node else ()):
            owner = self.graph.nodes.get(o)
            if owner is not None and deleting_dependents(owner.obj):
                self.attempt_to_delete.add(o)

    # -- API helpers -------------------------------------------------------------------
    async def _get_live(self, info: ResourceInfo, namespace: str, name: str, uid: str) -> Obj | None:
        """The current object, or None if it is gone or was replaced (another uid)."""
        try:
            obj = await with_retries(f"get {info.plural} {namespace}/{name}",
                                     lambda: self.client.resource(info).get(name, namespace), attempts=API_ATTEMPTS)
        except NotFound:
            return None
        return obj if meta.uid(obj) == uid else None

    def _mark_absent(self, uid: str) -> None:
        self._absent[uid] = None
        while len(self._absent) > _ABSENT_CACHE_SIZE:
            self._absent.pop(next(iter(self._absent)))

    async def _owner_state(self, dependent: Obj, ref: Obj) -> str:
        """'solid', 'dangling' or 'waiting' for one ownerReference (isDangling upstream)."""
        uid = ref.get("uid", "")
        if uid in self._absent:
            return "dangling"
        info = self._by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if info is None:
            # An owner kind we do not serve can never be confirmed absent: keep the dependent.
            return "solid"
        ns = meta.namespace(dependent) if info.namespaced else ""
        if info.namespaced and not ns:
            return "dangling"  # a cluster-scoped object cannot be owned by a namespaced one
        node = self.graph.nodes.get(uid)
        owner: Obj | None
        if node is not None and node.info is info and meta.name(node.obj) == ref.get("name") \
                and meta.namespace(node.obj) == ns:
            owner = node.obj
        else:
            owner = await self._get_live(info, ns, ref.get("name", ""), uid)
        if owner is None:
            self._mark_absent(uid)
            return "dangling"
        return "waiting" if deleting_dependents(owner) else "solid"

    async def _delete(self, info: ResourceInfo, obj: Obj, policy: str) -> None:
        try:
            await with_retries(f"delete {info.plural} {meta.key(obj)}", lambda: self.client.resource(info).delete(
                meta.name(obj), meta.namespace(obj), propagation_policy=policy, preconditions={"uid": meta.uid(obj)}),
                attempts=API_ATTEMPTS)
        except (NotFound, Conflict):
            pass  # gone already, or replaced by a namesake

    async def _patch_meta(self, info: ResourceInfo, obj: Obj, fields: Obj) -> None:
        """Merge-patch metadata fields, guarded by the object's resourceVersion."""
        md = {"resourceVersion": meta.resource_version(obj), **fields}
        try:
            await with_retries(f"patch {info.plural} {meta.key(obj)}", lambda: self.client.resource(info).patch(
                meta.name(obj), {"metadata": md}, meta.namespace(obj)), attempts=API_ATTEMPTS)
        except NotFound:
            pass

    async def _remove_finalizer(self, info: ResourceInfo, obj: Obj, fin: str) -> None:
        left = [f for f in finalizers(obj) if f != fin]
        await self._patch_meta(info, obj, {"finalizers": left or None})

    async def _drop_refs(self, info: ResourceInfo, obj: Obj, uids: set[str]) -> None:
        refs = [r for r in owner_refs(obj) if r.get("uid") not in uids]
        await self._patch_meta(info, obj, {"ownerReferences": refs or None})

    # -- attemptToDelete ---------------------------------------------------------------
    async def sync_delete(self, uid: str) -> None:
        """Decide the fate of one object: keep, drop stale references, or delete it."""
        node = self.graph.nodes.get(uid)
        if node is None:
            return
        latest = await self._get_live(node.info, meta.namespace(node.obj), meta.name(node.obj), uid)
        if latest is None:
            return
        if deleting_dependents(latest):
            await self._process_deleting_dependents(node.info, latest)
            return
        if meta.is_deleting(latest):
            return  # already on its way out
        refs = owner_refs(latest)
        if not refs:
            return
        states = {r.get("uid", ""): await self._owner_state(latest, r) for r in refs}
        solid = [u for u, s in states.items() if s == "solid"]
        stale = {u for u, s in states.items() if s != "solid"}
        waiting = [u for u, s in states.items() if s == "waiting"]
        if solid:
            if stale:
                await self._drop_refs(node.info, latest, stale)
            return
        if waiting and self.graph.dependents_of(uid):
            # Our own dependents must block the waiting owner too: delete in the foreground.
            if any(deleting_dependents(d.obj) for d in self.graph.dependents_of(uid)):
                await self._unblock_refs(node.info, latest)  # a cycle: do not wait on each other
            await self._delete(node.info, latest, "Foreground")
            return
        if ORPHAN in finalizers(latest):
            policy = "Orphan"
        elif FOREGROUND in finalizers(latest):
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("deleting %s %s (%s; no owner left)", node.info.kind, meta.key(latest),
                 "an owner is deleting in the foreground" if waiting else "owners gone")
        await self._delete(node.info, latest, policy)

    async def _unblock_refs(self, info: ResourceInfo, obj: Obj) -> None:
        refs = [{**r, "blockOwnerDeletion": False} if r.get("blockOwnerDeletion") else r for r in owner_refs(obj)]
        if refs != owner_refs(obj):
            await self._patch_meta(info, obj, {"ownerReferences": refs})

    async def _process_deleting_dependents(self, info: ResourceInfo, owner: Obj) -> None:
        uid = meta.uid(owner)
        blocking = self.graph.blocking_dependents(uid)
        if not blocking:
            await self._remove_finalizer(info, owner, FOREGROUND)
            return
        for dep in blocking:
            if not deleting_dependents(dep.obj):
                self.attempt_to_delete.add(meta.uid(dep.obj))

    # -- attemptToOrphan ---------------------------------------------------------------
    async def sync_orphan(self, uid: str) -> None:
        """Remove this owner's reference from its dependents, then its orphan finalizer."""
        node = self.graph.nodes.get(uid)
        if node is None:
            return
        owner = await self._get_live(node.info, meta.namespace(node.obj), meta.name(node.obj), uid)
        if owner is None or not orphaning(owner):
            return
        for dep in self.graph.dependents_of(uid):
            latest = await self._get_live(dep.info, meta.namespace(dep.obj), meta.name(dep.obj), meta.uid(dep.obj))
            if latest is not None and any(r.get("uid") == uid for r in owner_refs(latest)):
                await self._drop_refs(dep.info, latest, {uid})
        await self._remove_finalizer(node.info, owner, ORPHAN)

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self._running = True
        if self.custom is not None:
            self.custom.informer.start()
            await self.custom.informer.wait_synced()  # custom resources join the first sync
        for inf in list(self.informers):
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in list(self.informers)))
        await asyncio.gather(process_until(self.attempt_to_delete, self.sync_delete, stop, self.delete_workers),
                             process_until(self.attempt_to_orphan, self.sync_orphan, stop, self.orphan_workers))
