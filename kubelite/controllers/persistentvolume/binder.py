"""The PersistentVolume controller (upstream's persistent-volume-binder): binds claims to
volumes, asks provisioners for new ones, and moves volumes through their phases.

Claims and volumes each have a work queue; both are synced again every 15 s, as
upstream's resync does, so a lost race is only delayed.  A bind is four writes, in
upstream's order, each retried by the next sync when it fails: the volume's claimRef,
the volume's phase Bound, the claim's volumeName and annotations, the claim's status.

Dynamic provisioning is external only (as with CSI): the claim is annotated with the
class's provisioner, which creates a volume pre-bound to the claim; the next claim sync
binds it.  With ``WaitForFirstConsumer`` nothing happens until the scheduler has picked a
node for a pod using the claim (``volume.kubernetes.io/selected-node``).  A released
volume is left alone (Retain), left to its external provisioner (Delete), or Failed when
nothing can delete it.
"""
from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import NODES, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from kubelite.client.errors import Conflict, NotFound, StatusError
from kubelite.client.events import NORMAL, WARNING, EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.storage import util

log = logging.getLogger(__name__)
Obj = dict[str, Any]
RESYNC = 15.0


def _set_annotation(obj: Obj, key: str, value: str) -> None:
    md = obj.setdefault("metadata", {})
    ann = md.get("annotations")
    if not isinstance(ann, dict):
        ann = md["annotations"] = {}
    ann[key] = value


def claim_ref(claim: Obj) -> Obj:
    """The ObjectReference a bound volume keeps to its claim."""
    md = claim["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": md.get("namespace", ""), "name": md.get("name", ""),
            "uid": md.get("uid", ""), "apiVersion": "v1", "resourceVersion": md.get("resourceVersion", "")}


class PersistentVolumeController:
    """Binding, provisioning requests and reclaiming, over informers of claims, volumes and classes."""

    name = "persistentvolume-binder"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, recorder: Recorder | None = None,
                 resync: float = RESYNC):
        self.pvs = client.resource(PERSISTENTVOLUMES)
        self.pvcs = client.resource(PERSISTENTVOLUMECLAIMS)
        self.pv_informer = factory.informer(PERSISTENTVOLUMES)
        self.pvc_informer = factory.informer(PERSISTENTVOLUMECLAIMS)
        self.sc_informer = factory.informer(STORAGECLASSES)
        self.node_informer = factory.informer(NODES)
        self.recorder: Recorder = recorder or EventRecorder(client, "persistentvolume-controller")
        self.resync = resync
        self.claims = WorkQueue("claims")
        self.volumes = WorkQueue("volumes")
        self.pvc_informer.add_handler(self._claim_changed, lambda _o, c: self._claim_changed(c), self._claim_deleted)
        self.pv_informer.add_handler(self._volume_changed, lambda _o, v: self._volume_changed(v), self._volume_deleted)
        self.sc_informer.add_handler(lambda _sc: self._all_claims(), None, None)

    # -- event handlers -----------------------------------------------------------------
    def _claim_changed(self, claim: Obj) -> None:
        self.claims.add(meta.key(claim))

    def _claim_deleted(self, claim: Obj) -> None:
        # Its volume becomes Released: sync the volume that named it.
        name = (claim.get("spec") or {}).get("volumeName")
        if name:
            self.volumes.add(name)
        for pv in self.pv_informer.list():
            if util.is_bound_to(pv, claim):
                self.volumes.add(meta.name(pv))

    def _volume_changed(self, pv: Obj) -> None:
        self.volumes.add(meta.name(pv))
        ref = (pv.get("spec") or {}).get("claimRef")
        if isinstance(ref, dict) and ref.get("name"):
            self.claims.add(f"{ref.get('namespace') or ''}/{ref['name']}")
        else:
            self._unbound_claims()  # a new Available volume may fit a waiting claim

    def _volume_deleted(self, pv: Obj) -> None:
        ref = (pv.get("spec") or {}).get("claimRef")
        if isinstance(ref, dict) and ref.get("name"):
            self.claims.add(f"{ref.get('namespace') or ''}/{ref['name']}")

    def _all_claims(self) -> None:
        for c in self.pvc_informer.list():
            self.claims.add(meta.key(c))

    def _unbound_claims(self) -> None:
        for c in self.pvc_informer.list():
            if not (c.get("spec") or {}).get("volumeName"):
                self.claims.add(meta.key(c))

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, then the two queues and the periodic resync, until ``stop``."""
        for inf in (self.pv_informer, self.pvc_informer, self.sc_informer, self.node_informer):
            inf.start()
        for inf in (self.pv_informer, self.pvc_informer, self.sc_informer, self.node_informer):
            await inf.wait_synced()
        resync = asyncio.create_task(self._resync(stop))
        try:
            await asyncio.gather(process_until(self.claims, self.sync_claim, stop, 2),
                                 process_until(self.volumes, self.sync_volume, stop, 2))
        finally:
            resync.cancel()
            await asyncio.gather(resync, return_exceptions=True)

    async def _resync(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.resync)
            except TimeoutError:
                pass
            self._all_claims()
            for pv in self.pv_informer.list():
                self.volumes.add(meta.name(pv))

    # -- claims ---------------------------------------------------------------------------
    async def sync_claim(self, key: str) -> None:
        """syncClaim: bind, wait, provision, or notice a lost volume."""
        claim = self.pvc_informer.get(key)
        if claim is None or meta.is_deleting(claim) and not (claim.get("spec") or {}).get("volumeName"):
            return
        if util.ann_of(claim).get(util.ANN_BIND_COMPLETED) != "yes":
            await self._sync_unbound_claim(claim)
        else:
            await self._sync_bound_claim(claim)

    async def _sync_unbound_claim(self, claim: Obj) -> None:
        spec = claim.get("spec") or {}
        if spec.get("volumeName"):
            pv = self.pv_informer.get(spec["volumeName"])
            if pv is None:
                await self._claim_phase(claim, "Pending")  # the user asked for a volume that does not exist yet
                return
            ref = (pv.get("spec") or {}).get("claimRef")
            if ref is None or util.is_bound_to(pv, claim):
                await self._bind(pv, claim)
                return
            await self._claim_phase(claim, "Pending")
            self.recorder.event(claim, WARNING, "FailedBinding",
                                f'volume "{meta.name(pv)}" already bound to a different claim.')
            return
        cls_name = util.claim_class(claim)
        sc = self.sc_informer.get(cls_name) if cls_name else None
        delay = bool(sc and sc.get("volumeBindingMode") == "WaitForFirstConsumer")
        selected = util.ann_of(claim).get(util.ANN_SELECTED_NODE)
        node = self.node_informer.get(selected) if selected else None
        if selected and node is None:
            node = {"metadata": {"name": selected, "labels": {util.HOSTNAME_LABEL: selected}}}
        pv = util.find_best_match(claim, self.pv_informer.list(), node=node, delay_binding=delay)
        if pv is not None:
            await self._bind(pv, claim)
            return
        await self._claim_phase(claim, "Pending")
        if not cls_name:
            self.recorder.event(claim, NORMAL, "FailedBinding",
                                "no persistent volumes available for this claim and no storage class is set")
            return
        if sc is None:
            self.recorder.event(claim, WARNING, "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{cls_name}" not found')
            return
        if delay and not selected:
            self.recorder.event(claim, NORMAL, "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
            return
        provisioner = sc.get("provisioner") or ""
        if provisioner == util.NO_PROVISIONER:
            self.recorder.event(claim, NORMAL, "FailedBinding", "no persistent volumes available for this claim")
            return
        await self._request_provisioning(claim, provisioner)

    async def _request_provisioning(self, claim: Obj, provisioner: str) -> None:
        """Hand the claim to its external provisioner (annotations), once."""
        ann = util.ann_of(claim)
        if ann.get(util.ANN_STORAGE_PROVISIONER) != provisioner:
            # An update, as upstream's binder (its role may update claims, not patch them).
            new = copy.deepcopy(claim)
            _set_annotation(new, util.ANN_STORAGE_PROVISIONER, provisioner)
            _set_annotation(new, util.ANN_BETA_STORAGE_PROVISIONER, provisioner)
            try:
                await self.pvcs.update(new)
            except (NotFound, Conflict):
                return
        self.recorder.event(claim, NORMAL, "ExternalProvisioning",
                            f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                            "or manually by the system administrator. If volume creation is delayed, please verify "
                            "that the provisioner is running and correctly registered.")

    async def _sync_bound_claim(self, claim: Obj) -> None:
        name = (claim.get("spec") or {}).get("volumeName")
        if not name:
            await self._claim_phase(claim, "Lost")
            self.recorder.event(claim, WARNING, "ClaimLost",
                                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return
        pv = self.pv_informer.get(name)
        if pv is None:
            await self._claim_phase(claim, "Lost")
            self.recorder.event(claim, WARNING, "ClaimLost",
                                "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        if (pv.get("spec") or {}).get("claimRef") is None or util.is_bound_to(pv, claim):
            await self._bind(pv, claim)
            return
        await self._claim_phase(claim, "Lost")
        self.recorder.event(claim, WARNING, "ClaimMisbound",
                            "Two claims are bound to the same volume, this one is bound incorrectly")

    async def _claim_phase(self, claim: Obj, phase: str) -> None:
        if (claim.get("status") or {}).get("phase") == phase:
            return
        new = copy.deepcopy(claim)
        new.setdefault("status", {})["phase"] = phase
        if phase != "Bound":
            new["status"].pop("accessModes", None)
            new["status"].pop("capacity", None)
        try:
            await self.pvcs.update_status(new)
        except (NotFound, Conflict):
            pass

    async def _bind(self, pv: Obj, claim: Obj) -> None:
        """Upstream's bind(): volume claimRef, volume phase, claim volumeName, claim phase."""
        try:
            pv = await self._bind_volume_to_claim(pv, claim)
            pv = await self._volume_phase(pv, "Bound")
            claim = await self._bind_claim_to_volume(claim, pv)
            await self._claim_bound_status(claim, pv)
        except (NotFound, Conflict) as e:
            log.debug("binding %s to %s: %s (retried)", meta.key(claim), meta.name(pv), e)
            self.claims.add_rate_limited(meta.key(claim))

    async def _bind_volume_to_claim(self, pv: Obj, claim: Obj) -> Obj:
        ref = (pv.get("spec") or {}).get("claimRef")
        if isinstance(ref, dict) and ref.get("uid") == meta.uid(claim):
            return pv
        new = copy.deepcopy(pv)
        new["spec"]["claimRef"] = claim_ref(claim)
        if ref is None:
            _set_annotation(new, util.ANN_BOUND_BY_CONTROLLER, "yes")
        return await self.pvs.update(new)

    async def _volume_phase(self, pv: Obj, phase: str, reason: str = "", message: str = "") -> Obj:
        status = pv.get("status") or {}
        if status.get("phase") == phase and status.get("message", "") == message:
            return pv
        new = copy.deepcopy(pv)
        st = new.setdefault("status", {})
        st["phase"] = phase
        for k, v in (("reason", reason), ("message", message)):
            if v:
                st[k] = v
            else:
                st.pop(k, None)
        return await self.pvs.update_status(new)

    async def _bind_claim_to_volume(self, claim: Obj, pv: Obj) -> Obj:
        spec = claim.get("spec") or {}
        ann = util.ann_of(claim)
        if spec.get("volumeName") == meta.name(pv) and ann.get(util.ANN_BIND_COMPLETED) == "yes":
            return claim
        new = copy.deepcopy(claim)
        if spec.get("volumeName") != meta.name(pv):
            new["spec"]["volumeName"] = meta.name(pv)
            _set_annotation(new, util.ANN_BOUND_BY_CONTROLLER, "yes")
        _set_annotation(new, util.ANN_BIND_COMPLETED, "yes")
        return await self.pvcs.update(new)

    async def _claim_bound_status(self, claim: Obj, pv: Obj) -> None:
        pspec = pv.get("spec") or {}
        want = {"phase": "Bound", "accessModes": list(pspec.get("accessModes") or []),
                "capacity": dict(pspec.get("capacity") or {})}
        status = claim.get("status") or {}
        if all(status.get(k) == v for k, v in want.items()):
            return
        new = copy.deepcopy(claim)
        new.setdefault("status", {}).update(want)
        await self.pvcs.update_status(new)

    # -- volumes --------------------------------------------------------------------------
    async def sync_volume(self, key: str) -> None:
        """syncVolume: Available, Bound, Released, or Failed with the reason."""
        pv = self.pv_informer.get(key)
        if pv is None:
            return
        try:
            await self._sync_volume(pv)
        except (NotFound, Conflict):
            self.volumes.add_rate_limited(key)

    async def _sync_volume(self, pv: Obj) -> None:
        spec = pv.get("spec") or {}
        ref = spec.get("claimRef")
        if not isinstance(ref, dict):
            await self._volume_phase(pv, "Available")
            return
        if not ref.get("uid"):
            await self._volume_phase(pv, "Available")  # reserved for a claim that is not bound yet
            return
        claim = self.pvc_informer.get(f"{ref.get('namespace') or ''}/{ref.get('name', '')}")
        if claim is not None and meta.uid(claim) != ref.get("uid"):
            claim = None  # a new claim with the old name is not ours
        if claim is None:
            phase = (pv.get("status") or {}).get("phase")
            if phase not in ("Released", "Failed"):
                # The informer may be behind: confirm with the server before releasing.
                try:
                    live = await self.pvcs.get(ref.get("name", ""), ref.get("namespace") or "")
                    if meta.uid(live) == ref.get("uid"):
                        return
                except NotFound:
                    pass
                pv = await self._volume_phase(pv, "Released")
            await self._reclaim(pv)
            return
        cspec = claim.get("spec") or {}
        if not cspec.get("volumeName"):
            self.claims.add(meta.key(claim))  # the claim half of a bind is still to come
            return
        if cspec.get("volumeName") == meta.name(pv):
            await self._volume_phase(pv, "Bound")
            return
        # The claim went to another volume: free this one if we reserved it.
        if util.ann_of(pv).get(util.ANN_BOUND_BY_CONTROLLER) == "yes":
            new = copy.deepcopy(pv)
            new["spec"].pop("claimRef", None)
            (new["metadata"].get("annotations") or {}).pop(util.ANN_BOUND_BY_CONTROLLER, None)
            pv = await self.pvs.update(new)
            await self._volume_phase(pv, "Available")

    async def _reclaim(self, pv: Obj) -> None:
        spec = pv.get("spec") or {}
        policy = spec.get("persistentVolumeReclaimPolicy") or "Retain"
        if (pv.get("status") or {}).get("phase") != "Released" or policy == "Retain" or meta.is_deleting(pv):
            return
        if policy == "Delete" and util.ann_of(pv).get(util.ANN_PROVISIONED_BY):
            return  # its external provisioner deletes it (and its storage)
        msg = (f'error getting deleter volume plugin for volume "{meta.name(pv)}": no deletable volume plugin matched'
               if policy == "Delete" else "No recycler plugin found for the volume!")
        self.recorder.event(pv, WARNING, "VolumeFailedDelete" if policy == "Delete" else "VolumeFailedRecycle", msg)
        try:
            await self._volume_phase(pv, "Failed", message=msg)
        except StatusError as e:
            log.debug("marking %s failed: %s", meta.name(pv), e)
