"""The CRD controllers that live inside the API server, as upstream's do.

apiextensions-apiserver runs, beside its HTTP handler, a naming controller (which names a
CRD accepts: NamesAccepted), an establishing controller (Established) and a finalizer
controller (deletes a terminating CRD's objects, then drops the
``customresourcecleanup.apiextensions.k8s.io`` finalizer).  Ours are one class that the
API server calls:

- ``admit`` (registry admission, every write): defaults and validates CRDs and sets their
  status; prunes, defaults and validates custom resources against their schema;
- ``sync`` (after every CRD write and at start): rebuilds the dynamic catalogue from the
  stored CRDs, so a CRD's resources are served as soon as its write returns, and starts
  the cleanup of terminating CRDs;
- ``before_delete``: a CRD's first DELETE marks it Terminating and adds the finalizer.

Only the API server touches the store, so these work through the registry directly.
"""
from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from kubelite.api import errors, meta, resources
from kubelite.api.resources import CUSTOMRESOURCEDEFINITIONS, ResourceInfo
from kubelite.apiextensions import cel, crdvalidation, schema
from kubelite.apiextensions.info import (
    CLEANUP_FINALIZER,
    CustomResourceInfo,
    infos_from_crd,
    is_established,
    storage_version,
)
from kubelite.apiextensions.openapi import crd_schema
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]
log = logging.getLogger("kubelite.apiextensions")

CRDS = CUSTOMRESOURCEDEFINITIONS


def _condition(ctype: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {"type": ctype, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}


def set_condition(crd: Obj, cond: Obj) -> None:
    """Put a condition in the CRD's status, keeping its transition time when unchanged."""
    conds = crd.setdefault("status", {}).setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            if c.get("status") == cond["status"]:
                cond = dict(cond, lastTransitionTime=c.get("lastTransitionTime", cond["lastTransitionTime"]))
            conds[i] = cond
            return
    conds.append(cond)


def _name_set(names: Obj) -> dict[str, set[str]]:
    return {"plural": {names.get("plural") or ""}, "singular": {names.get("singular") or ""},
            "shortNames": set(names.get("shortNames") or []), "kind": {names.get("kind") or ""},
            "listKind": {names.get("listKind") or ""}}


_CONFLICT_REASONS = {"plural": "PluralConflict", "singular": "SingularConflict", "shortNames": "ShortNamesConflict",
                     "kind": "KindConflict", "listKind": "ListKindConflict"}


def name_conflict(crd: Obj, others: list[Obj]) -> tuple[str, str] | None:
    """(reason, message) when another CRD of the group already uses one of its names."""
    spec = crd.get("spec") or {}
    mine = _name_set(spec.get("names") or {})
    for other in others:
        if meta.name(other) == meta.name(crd) or (other.get("spec") or {}).get("group") != spec.get("group"):
            continue
        theirs = (other.get("status") or {}).get("acceptedNames") or {}
        taken = _name_set(theirs)
        every_taken = set().union(*taken.values()) - {""}
        for field, values in mine.items():
            clash = sorted(v for v in values if v and v in every_taken)
            if clash:
                return _CONFLICT_REASONS[field], f'"{clash[0]}" is already in use'
    return None


class CRDManager:
    """Keeps the dynamic catalogue and CRD status in step with the stored CRDs."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cleanups: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        self.on_change: list[Any] = []  # callables run after the catalogue changed (OpenAPI)

    # -- admission -----------------------------------------------------------------------
    async def admit(self, info: ResourceInfo, new: Obj, old: Obj | None) -> None:
        """Registry admission: CRDs and custom resources; other kinds pass."""
        if info is CRDS:
            await self._admit_crd(new, old)
        elif isinstance(info, CustomResourceInfo):
            self._admit_custom(info, new, old)

    async def _admit_crd(self, crd: Obj, old: Obj | None) -> None:
        # Wrong JSON types first (upstream's typed decoding refuses them before validation).
        causes = [c for c in schema.validate({k: v for k, v in crd.items() if k != "metadata"}, crd_schema())
                  if c.reason == "FieldValueTypeInvalid"]
        if not causes:
            crdvalidation.apply_defaults(crd)
            causes = crdvalidation.validate(crd, old)
        if causes:
            raise errors.invalid("CustomResourceDefinition", "apiextensions.k8s.io", meta.name(crd), causes)
        md = crd["metadata"]
        if old is None:
            md["generation"] = 1
            crd["status"] = {}  # the controllers (``sync``) fill it in
        elif crd.get("spec") != old.get("spec"):
            md["generation"] = int((old.get("metadata") or {}).get("generation") or 1) + 1
        # Every version objects were ever stored in stays listed (storage migrations read it).
        stored = crd.setdefault("status", {}).setdefault("storedVersions", [])
        sv = storage_version(crd)
        if sv and sv not in stored:
            stored.append(sv)

    def _admit_custom(self, info: CustomResourceInfo, obj: Obj, old: Obj | None) -> None:
        if old is None and info.terminating:
            raise errors.status_error(405, "MethodNotAllowed",
                                      "create not allowed while custom resource definition is terminating",
                                      {"group": info.group, "kind": info.plural})
        schema.apply_defaults(obj, info.schema)
        causes = schema.validate(obj, info.schema)
        if not causes:  # upstream runs the rules on values that passed the schema
            causes = cel.validate(obj, old, info.schema)
        if causes:
            raise errors.invalid(info.kind, info.group, meta.name(obj), causes)
        md = obj["metadata"]
        if old is None:
            md["generation"] = 1
            return
        skip = ("metadata", "status") if info.has_status else ("metadata",)
        before = {k: v for k, v in old.items() if k not in skip}
        after = {k: v for k, v in obj.items() if k not in skip}
        before.pop("apiVersion", None)
        after.pop("apiVersion", None)
        if before != after:
            md["generation"] = int((old.get("metadata") or {}).get("generation") or 1) + 1

    # -- deletion ------------------------------------------------------------------------
    async def before_delete(self, name: str) -> None:
        """A CRD's first DELETE: Terminating condition and the cleanup finalizer."""
        def mark(crd: Obj) -> Obj:
            md = crd["metadata"]
            if md.get("deletionTimestamp"):
                return crd
            fins = list(md.get("finalizers") or [])
            if CLEANUP_FINALIZER not in fins:
                fins.append(CLEANUP_FINALIZER)
            md["finalizers"] = fins
            set_condition(crd, _condition("Terminating", "True", "InstanceDeletionPending",
                                          "CustomResourceDefinition marked for deletion; CustomResource deletion "
                                          "will begin soon", meta.rfc3339()))
            return crd
        try:
            await self.registry.guaranteed_update(CRDS, "", name, mark, subresource="status")
        except errors.NotFound:
            pass  # the DELETE that follows answers 404

    async def _cleanup(self, crd: Obj) -> None:
        """Delete every object of a terminating CRD, then release the CRD."""
        name = meta.name(crd)
        infos = infos_from_crd(crd)
        try:
            if infos:
                info = infos[0]
                while True:
                    items, _, _, _ = await self.registry.list(info, "")
                    if not items:
                        break
                    for obj in items:
                        if meta.is_deleting(obj):
                            continue
                        try:
                            await self.registry.delete(info, meta.namespace(obj), meta.name(obj), {})
                        except errors.NotFound:
                            pass
                    # Objects with finalizers of their own stay until their owners let go.
                    await asyncio.sleep(0.5)

            def release(cur: Obj) -> Obj:
                md = cur["metadata"]
                md["finalizers"] = [f for f in md.get("finalizers") or [] if f != CLEANUP_FINALIZER]
                if not md["finalizers"]:
                    md.pop("finalizers")
                return cur
            await self.registry.guaranteed_update(CRDS, "", name, release, subresource="status")
        except errors.NotFound:
            pass
        except Exception:  # a cleanup must not die silently: it is retried by the next sync
            log.exception("cleanup of CustomResourceDefinition %s failed", name)
        finally:
            self._cleanups.pop(name, None)
        await self.sync()

    # -- the catalogue -------------------------------------------------------------------
    async def sync(self) -> None:
        """Name and establish new CRDs, then rebuild the dynamic catalogue from them."""
        async with self._lock:
            crds, _, _, _ = await self.registry.list(CRDS, "")
            crds.sort(key=lambda c: ((c.get("metadata") or {}).get("creationTimestamp") or "", meta.name(c)))
            accepted: list[Obj] = []
            infos: list[CustomResourceInfo] = []
            for crd in crds:
                md = crd["metadata"]
                name = meta.name(crd)
                if not md.get("deletionTimestamp"):
                    crd = await self._name_and_establish(crd, accepted)
                accepted.append(crd)
                infos.extend(infos_from_crd(crd))
                if md.get("deletionTimestamp") and CLEANUP_FINALIZER in (md.get("finalizers") or []) \
                        and name not in self._cleanups:
                    self._cleanups[name] = asyncio.get_running_loop().create_task(self._cleanup(crd))
            resources.set_dynamic(infos)
        for fn in self.on_change:
            fn()

    async def _name_and_establish(self, crd: Obj, others: list[Obj]) -> Obj:
        """The naming and establishing controllers: accepted names and the two conditions,
        written through /status when they change."""
        def desired(cur: Obj) -> Obj:
            now = meta.rfc3339()
            status = cur.setdefault("status", {})
            conflict = name_conflict(cur, others)
            if conflict is None:
                status["acceptedNames"] = copy.deepcopy((cur.get("spec") or {}).get("names") or {})
                set_condition(cur, _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", now))
                set_condition(cur, _condition("Established", "True", "InitialNamesAccepted",
                                              "the initial names have been accepted", now))
            else:
                status.setdefault("acceptedNames", {"plural": "", "kind": ""})
                set_condition(cur, _condition("NamesAccepted", "False", conflict[0], conflict[1], now))
                if not is_established(cur):
                    set_condition(cur, _condition("Established", "False", "NotAccepted",
                                                  "not all names are accepted", now))
            return cur
        want = desired(copy.deepcopy(crd))
        if want.get("status") == crd.get("status"):
            return crd
        try:
            out, _ = await self.registry.guaranteed_update(CRDS, "", meta.name(crd), desired, subresource="status")
        except errors.NotFound:
            return crd
        return out

    async def stop(self) -> None:
        """Cancel running cleanups (they resume at the next start)."""
        for task in list(self._cleanups.values()):
            task.cancel()
        for task in list(self._cleanups.values()):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._cleanups.clear()
