"""The ``local-path`` StorageClass and its provisioner (after k3s's local-path provisioner).

The provisioner is an API client like any external provisioner: it takes the claims the
PV controller annotated with ``volume.kubernetes.io/storage-provisioner:
kubelite.dev/local-path``, makes a directory ``DATA_DIR/storage/<pv-name>`` and creates a
``hostPath`` PersistentVolume pre-bound to the claim, with node affinity to the node the
scheduler chose (``volume.kubernetes.io/selected-node``; the server's own node for an
Immediate class).  The PV controller then binds the two.  When such a volume is Released
and its reclaim policy is Delete, the directory is removed and the volume deleted.

The directory is made on the machine the provisioner runs on (the server's): a node agent
on another machine creates its own empty directory at the same path when it mounts it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from kubelite.client.errors import AlreadyExists, Conflict, NotFound
from kubelite.client.events import NORMAL, WARNING, EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.storage import util

log = logging.getLogger(__name__)
Obj = dict[str, Any]

PROVISIONER = "kubelite.dev/local-path"
CLASS_NAME = "local-path"
IDENTITY = "kubelite:local-path-provisioner"  # the provisioner's user (bound to system:persistent-volume-provisioner)


def default_class() -> Obj:
    """The ``local-path`` StorageClass the server creates at start (the cluster's default)."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": CLASS_NAME, "annotations": {util.ANN_DEFAULT_CLASS: "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}


def storage_root(data_dir: str) -> str:
    """Where provisioned volumes live."""
    return os.path.join(data_dir, "storage")


def volume_name(claim: Obj) -> str:
    """The PV name of a claim's provisioned volume (upstream's ``pvc-<claim uid>``)."""
    return f"pvc-{meta.uid(claim)}"


def volume_for(claim: Obj, sc: Obj, node: str, path: str) -> Obj:
    """The PersistentVolume provisioned for a claim on ``node`` at ``path``."""
    spec = claim.get("spec") or {}
    md = claim["metadata"]
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage") or "0"
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {util.ANN_PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": meta.name(sc),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": md.get("namespace", ""),
                         "name": md.get("name", ""), "uid": md.get("uid", ""), "apiVersion": "v1",
                         "resourceVersion": md.get("resourceVersion", "")},
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": util.HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}},
        },
    }


class LocalPathProvisioner:
    """Provisions and deletes ``kubelite.dev/local-path`` volumes."""

    name = "local-path-provisioner"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, data_dir: str, node_name: str,
                 recorder: Recorder | None = None):
        self.pvs = client.resource(PERSISTENTVOLUMES)
        self.claim_informer = factory.informer(PERSISTENTVOLUMECLAIMS)
        self.pv_informer = factory.informer(PERSISTENTVOLUMES)
        self.sc_informer = factory.informer(STORAGECLASSES)
        self.root = storage_root(data_dir)
        self.node_name = node_name
        self.recorder: Recorder = recorder or EventRecorder(client, PROVISIONER)
        self.queue = WorkQueue("local-path")
        self.claim_informer.add_handler(self._claim, lambda _o, c: self._claim(c), None)
        self.pv_informer.add_handler(self._volume, lambda _o, v: self._volume(v), None)

    def _claim(self, claim: Obj) -> None:
        if util.ann_of(claim).get(util.ANN_STORAGE_PROVISIONER) == PROVISIONER:
            self.queue.add("claim:" + meta.key(claim))

    def _volume(self, pv: Obj) -> None:
        if util.ann_of(pv).get(util.ANN_PROVISIONED_BY) == PROVISIONER:
            self.queue.add("volume:" + meta.name(pv))

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers and the queue until ``stop``."""
        for inf in (self.claim_informer, self.pv_informer, self.sc_informer):
            inf.start()
        for inf in (self.claim_informer, self.pv_informer, self.sc_informer):
            await inf.wait_synced()
        await process_until(self.queue, self.sync, stop, 2)

    async def sync(self, key: str) -> None:
        """One claim to provision or one volume to delete."""
        what, _, rest = key.partition(":")
        if what == "claim":
            claim = self.claim_informer.get(rest)
            if claim is not None:
                await self.provision(claim)
        else:
            pv = self.pv_informer.get(rest)
            if pv is not None:
                await self.delete(pv)

    async def provision(self, claim: Obj) -> None:
        """Create the directory and the pre-bound volume of a claim handed to us."""
        spec = claim.get("spec") or {}
        if spec.get("volumeName") or meta.is_deleting(claim) or \
                util.ann_of(claim).get(util.ANN_STORAGE_PROVISIONER) != PROVISIONER:
            return
        name = volume_name(claim)
        if self.pv_informer.get(name) is not None:
            return
        sc = self.sc_informer.get(util.claim_class(claim))
        if sc is None or sc.get("provisioner") != PROVISIONER:
            return
        node = util.ann_of(claim).get(util.ANN_SELECTED_NODE)
        if not node:
            if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                return  # the scheduler has not chosen yet
            node = self.node_name
        if spec.get("selector"):
            self.recorder.event(claim, WARNING, "ProvisioningFailed", "claim Selector is not supported")
            return
        self.recorder.event(claim, NORMAL, "Provisioning",
                            f'External provisioner is provisioning volume for claim "{meta.key(claim)}"')
        path = os.path.join(self.root, name)
        try:
            await asyncio.to_thread(_make_dir, path)
        except OSError as e:
            self.recorder.event(claim, WARNING, "ProvisioningFailed", f"failed to provision volume: {e}")
            raise
        try:
            await self.pvs.create(volume_for(claim, sc, node, path))
        except AlreadyExists:
            return
        self.recorder.event(claim, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {name}")

    async def delete(self, pv: Obj) -> None:
        """Remove a Released Delete-policy volume's directory, then the volume."""
        spec = pv.get("spec") or {}
        if (pv.get("status") or {}).get("phase") != "Released" or \
                spec.get("persistentVolumeReclaimPolicy") != "Delete" or meta.is_deleting(pv):
            return
        path = str((spec.get("hostPath") or {}).get("path") or "")
        # Only what we made: a path right under our root, never anything a user pointed at.
        if path and os.path.dirname(os.path.abspath(path)) == os.path.abspath(self.root):
            await asyncio.to_thread(shutil.rmtree, path, True)
        try:
            await self.pvs.delete(meta.name(pv), preconditions={"uid": meta.uid(pv)})
        except (NotFound, Conflict):
            return
        log.info("deleted volume %s and its directory %s", meta.name(pv), path)


def _make_dir(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)  # any container user may write, as k3s's provisioner makes them
