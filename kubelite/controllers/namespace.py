"""Namespace controller: empties a Terminating namespace, then finalizes it.

Upstream twin: ``pkg/controller/namespace`` (``namespace_controller.go`` for the queue,
``deletion/namespaced_resources_deleter.go`` for the work, ``status_condition_utils.go``
for the conditions).

Once the API server has set a namespace's deletionTimestamp (phase Terminating), each
sync deletes every namespaced object in it — deletecollection where the resource has
that verb, otherwise list and delete one by one, always with Background propagation —
then lists again.  What remains (pods in their grace period, objects with finalizers)
is written into the namespace's status conditions with upstream's reasons and
messages, and the namespace is re-queued after an estimate: the longest pod grace
period left, or a fixed recheck for finalizers.  A pod deletion in a terminating
namespace also re-queues it, so the namespace goes as soon as the last pod does.
When nothing is left, ``PUT namespaces/NAME/finalize`` drops the ``kubernetes``
finalizer from spec.finalizers and the API server removes the namespace.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import CUSTOMRESOURCEDEFINITIONS, NAMESPACES, PODS, RESOURCES, ResourceInfo
from kubelite.apiextensions.info import infos_from_crd, storage_version
from kubelite.client.errors import MethodNotAllowed, NotFound, StatusError
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]

FINALIZER = "kubernetes"
# Upstream's finalizerEstimateSeconds: a guess at how long someone else's finalizer takes.
FINALIZER_ESTIMATE_SECONDS = 15.0

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
CONDITION_TYPES = (DISCOVERY_FAILURE, GV_PARSING_FAILURE, CONTENT_FAILURE, CONTENT_REMAINING, FINALIZERS_REMAINING)
OK_REASONS = {
    DISCOVERY_FAILURE: "ResourcesDiscovered",
    GV_PARSING_FAILURE: "ParsedGroupVersions",
    CONTENT_FAILURE: "ContentDeleted",
    CONTENT_REMAINING: "ContentRemoved",
    FINALIZERS_REMAINING: "ContentHasNoFinalizers",
}
OK_MESSAGES = {
    DISCOVERY_FAILURE: "All resources successfully discovered",
    GV_PARSING_FAILURE: "All legacy kube types successfully parsed",
    CONTENT_FAILURE: "All content successfully deleted, may be waiting on finalization",
    CONTENT_REMAINING: "All content successfully removed",
    FINALIZERS_REMAINING: "All content-preserving finalizers finished",
}


def namespaced_resources() -> list[ResourceInfo]:
    """Every namespaced resource whose objects can be listed and deleted."""
    return [r for r in RESOURCES if r.namespaced and {"list", "delete"} <= set(r.verbs)]


@dataclass
class ContentTotals:
    """What a pass left behind: instances per resource and per finalizer, plus errors."""

    remaining: dict[ResourceInfo, int] = field(default_factory=dict)
    finalizers: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    estimate: float = 0.0


def _condition(type_: str, status: str, reason: str, message: str) -> Obj:
    return {"type": type_, "status": status, "lastTransitionTime": meta.rfc3339(),
            "reason": reason, "message": message}


def deletion_conditions(totals: ContentTotals) -> list[Obj]:
    """The namespace conditions for one pass (failures True, the rest their OK variant)."""
    new: dict[str, Obj] = {}
    if totals.remaining:
        parts = sorted(f"{r.plural}.{r.group} has {n} resource instances" for r, n in totals.remaining.items() if n)
        new[CONTENT_REMAINING] = _condition(CONTENT_REMAINING, "True", "SomeResourcesRemain",
                                            f"Some resources are remaining: {', '.join(parts)}")
    if totals.finalizers:
        parts = sorted(f"{f} in {n} resource instances" for f, n in totals.finalizers.items() if n)
        new[FINALIZERS_REMAINING] = _condition(
            FINALIZERS_REMAINING, "True", "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {', '.join(parts)}")
    if totals.errors:
        msgs = sorted(totals.errors)
        new[CONTENT_FAILURE] = _condition(
            CONTENT_FAILURE, "True", "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(msgs)} remaining: {', '.join(msgs)}")
    return [new.get(t) or _condition(t, "False", OK_REASONS[t], OK_MESSAGES[t]) for t in CONDITION_TYPES]


def merge_conditions(current: list[Obj], new: Iterable[Obj]) -> tuple[list[Obj], bool]:
    """Apply new conditions; lastTransitionTime moves only when a status flips."""
    out = [dict(c) for c in current]
    changed = False
    for c in new:
        old = next((o for o in out if o.get("type") == c["type"]), None)
        if old is None:
            out.append(c)
            changed = True
        elif (old.get("status"), old.get("reason"), old.get("message")) != (c["status"], c["reason"], c["message"]):
            if old.get("status") != c["status"]:
                old["lastTransitionTime"] = c["lastTransitionTime"]
            old.update(status=c["status"], reason=c["reason"], message=c["message"])
            changed = True
    return out, changed


def pod_grace_estimate(pods: Iterable[Obj]) -> int:
    """The longest terminationGracePeriodSeconds among pods still running (upstream's estimate)."""
    est = 0
    for p in pods:
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        est = max(est, int((p.get("spec") or {}).get("terminationGracePeriodSeconds") or 0))
    return est


class NamespaceController:
    """Deletes the content of Terminating namespaces, then removes their finalizer."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 finalizer_estimate: float = FINALIZER_ESTIMATE_SECONDS):
        self.client = client
        self.namespaces = factory.informer(NAMESPACES)
        self.pods = factory.informer(PODS)
        self.queue = WorkQueue("namespace")
        self.workers = workers
        self.finalizer_estimate = finalizer_estimate
        self._rc = client.resource(NAMESPACES)
        self.namespaces.add_handler(self._enqueue, lambda _o, n: self._enqueue(n), None)
        self.pods.add_handler(None, None, self._pod_deleted)

    def _enqueue(self, ns: Obj) -> None:
        if meta.is_deleting(ns):
            self.queue.add(meta.name(ns))

    def _pod_deleted(self, pod: Obj) -> None:
        ns = self.namespaces.get(meta.namespace(pod))
        if ns is not None and meta.is_deleting(ns):
            self.queue.add(meta.name(ns))

    async def sync(self, name: str) -> None:
        """Move one namespace's deletion forward (level-based: reads the namespace live)."""
        try:
            ns = await self._rc.get(name)
        except NotFound:
            return
        if not meta.is_deleting(ns):
            return
        if (ns.get("status") or {}).get("phase") != "Terminating":
            ns = await self._rc.update_status({**ns, "status": {**(ns.get("status") or {}), "phase": "Terminating"}})
        if not (ns.get("spec") or {}).get("finalizers"):
            return  # our part is done; metadata finalizers belong to others
        totals = await self.delete_all_content(name, ns)
        conditions, changed = merge_conditions((ns.get("status") or {}).get("conditions") or [],
                                               deletion_conditions(totals))
        if changed:
            try:
                ns = await self._rc.update_status({**ns, "status": {**(ns.get("status") or {}),
                                                                    "conditions": conditions}})
            except NotFound:
                return
        if totals.errors:
            raise RuntimeError(f"namespace {name}: " + "; ".join(totals.errors))
        if totals.remaining:
            delay = totals.estimate or self.finalizer_estimate
            log.debug("namespace %s: content remains, rechecking in %.1fs", name, delay)
            self.queue.add_after(name, delay)
            return
        await self.finalize(ns)

    async def delete_all_content(self, namespace: str, ns: Obj) -> ContentTotals:
        """Delete every namespaced object in ``namespace``; report what is left."""
        totals = ContentTotals()
        since = (meta.now() - (meta.parse_time(ns["metadata"]["deletionTimestamp"]) or meta.now())).total_seconds()
        for info in [*namespaced_resources(), *await self._custom_resources()]:
            try:
                left = await self._delete_resource(info, namespace)
            except StatusError as e:
                totals.errors.append(f"{info.plural}.{info.group}: {e.message}" if info.group else
                                     f"{info.plural}: {e.message}")
                continue
            if not left:
                continue
            totals.remaining[info] = len(left)
            for item in left:
                for f in item.get("metadata", {}).get("finalizers") or []:
                    totals.finalizers[f] = totals.finalizers.get(f, 0) + 1
            if info is PODS:
                est = max(pod_grace_estimate(left) - since, 0)
                totals.estimate = max(totals.estimate, est)
            elif any(item.get("metadata", {}).get("finalizers") for item in left):
                totals.estimate = max(totals.estimate, self.finalizer_estimate)
        return totals

    async def _custom_resources(self) -> list[ResourceInfo]:
        """Namespaced custom resources: content too (upstream finds them by discovery; we
        read the CRDs, which this controller may list)."""
        crds = (await self.client.resource(CUSTOMRESOURCEDEFINITIONS).list()).get("items") or []
        out: list[ResourceInfo] = []
        for crd in crds:
            infos = [i for i in infos_from_crd(crd) if i.namespaced]
            sv = storage_version(crd)
            out.extend([i for i in infos if i.version == sv][:1] or infos[:1])
        return out

    async def _delete_resource(self, info: ResourceInfo, namespace: str) -> list[Obj]:
        rc = self.client.resource(info)
        done = False
        if "deletecollection" in info.verbs:
            try:
                await rc.delete_collection(namespace, propagation_policy="Background")
                done = True
            except (NotFound, MethodNotAllowed):
                pass  # not served that way: fall back to one by one
        items = (await rc.list(namespace)).get("items") or []
        if not done:
            for item in items:
                if meta.is_deleting(item):
                    continue
                try:
                    await rc.delete(meta.name(item), namespace, propagation_policy="Background")
                except NotFound:
                    pass
            items = (await rc.list(namespace)).get("items") or []
        return items

    async def finalize(self, ns: Obj) -> None:
        """PUT namespaces/NAME/finalize without our finalizer."""
        fins = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
        body = {**ns, "spec": {**(ns.get("spec") or {}), "finalizers": fins}}
        try:
            await self._rc.update(body, subresource="finalize")
        except NotFound:
            pass
        log.info("namespace %s finalized", meta.name(ns))

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self.namespaces.start()
        self.pods.start()
        await asyncio.gather(self.namespaces.wait_synced(), self.pods.wait_synced())
        await process_until(self.queue, self.sync, stop, self.workers)
