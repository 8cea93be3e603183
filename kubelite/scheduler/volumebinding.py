"""The VolumeBinding plugin, reduced to what kubelite's storage needs.

Filter: a pod's claims must exist and not be deleted; a bound claim's volume must admit
the node (its nodeAffinity); an unbound claim of an Immediate class keeps the pod waiting
(``pod has unbound immediate PersistentVolumeClaims``); an unbound WaitForFirstConsumer
claim fits any node its class can provision on, or (``kubernetes.io/no-provisioner``) a
node some matching volume admits.  Reserve: unbound WaitForFirstConsumer claims get the
chosen node as ``volume.kubernetes.io/selected-node``; the pod is bound only once all its
claims are (upstream's PreBind wait), so it is tried again when a claim changes.

Deviation: upstream's scheduler binds static volumes itself; here the PV controller does,
for the node recorded in the claim.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import meta
from kubelite.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from kubelite.client.protocols import ResourceAPI, SharedInformerFactory
from kubelite.storage import util

Obj = dict[str, Any]

AFFINITY_CONFLICT = "node(s) had volume node affinity conflict"
NO_VOLUME_TO_BIND = "node(s) didn't find available persistent volumes to bind"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"


class VolumeBinding:
    """Claims, volumes and classes as the scheduler sees them."""

    def __init__(self, factory: SharedInformerFactory, claims_api: ResourceAPI):
        self.claims = factory.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes = factory.informer(PERSISTENTVOLUMES)
        self.classes = factory.informer(STORAGECLASSES)
        self.claims_api = claims_api

    def _claims(self, pod: Obj) -> tuple[list[Obj], str | None]:
        """The pod's claims, or the reason it cannot be placed anywhere now."""
        ns = meta.namespace(pod)
        out = []
        for name in util.claim_names(pod):
            claim = self.claims.get(f"{ns}/{name}")
            if claim is None:
                return [], f'persistentvolumeclaim "{name}" not found'
            if meta.is_deleting(claim):
                return [], f'persistentvolumeclaim "{name}" is being deleted'
            out.append(claim)
        return out, None

    def _delayed(self, claim: Obj) -> Obj | None:
        """The claim's WaitForFirstConsumer class, or None (Immediate or no class)."""
        cls = util.claim_class(claim)
        sc = self.classes.get(cls) if cls else None
        if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
            return sc
        return None

    def uses_claims(self, pod: Obj) -> bool:
        """Whether the pod has persistentVolumeClaim volumes at all."""
        return bool(util.claim_names(pod))

    def prefilter(self, pod: Obj) -> str | None:
        """Why no node can take the pod now (a claim missing, deleted, or unbound with an
        Immediate class), as upstream's PreFilter says it; None to go on to the nodes."""
        claims, why = self._claims(pod)
        if why:
            return why
        for claim in claims:
            if not (claim.get("spec") or {}).get("volumeName") and self._delayed(claim) is None:
                return UNBOUND_IMMEDIATE
        return None

    def filter(self, node: Obj, pod: Obj) -> str | None:
        """None when the pod's claims allow the node, else upstream's reason."""
        claims, why = self._claims(pod)
        if why:
            return why
        for claim in claims:
            volume_name = (claim.get("spec") or {}).get("volumeName")
            if volume_name:
                pv = self.volumes.get(volume_name)
                if pv is None or not util.node_matches(pv, node):
                    return AFFINITY_CONFLICT
                continue
            sc = self._delayed(claim)
            if sc is None:
                return UNBOUND_IMMEDIATE
            selected = util.ann_of(claim).get(util.ANN_SELECTED_NODE)
            if selected and selected != meta.name(node):
                return NO_VOLUME_TO_BIND  # being provisioned for another node
            if sc.get("provisioner") == util.NO_PROVISIONER and \
                    util.find_best_match(claim, self.volumes.list(), node=node, delay_binding=True) is None:
                return NO_VOLUME_TO_BIND
        return None

    async def reserve(self, pod: Obj, node_name: str) -> bool:
        """Record the chosen node on unbound delayed claims; True when every claim is bound."""
        claims, why = self._claims(pod)
        if why:
            return False
        ready = True
        for claim in claims:
            if (claim.get("spec") or {}).get("volumeName"):
                continue
            ready = False
            if util.ann_of(claim).get(util.ANN_SELECTED_NODE) != node_name and self._delayed(claim) is not None:
                patch = {"metadata": {"annotations": {util.ANN_SELECTED_NODE: node_name}}}
                await self.claims_api.patch(meta.name(claim), patch, meta.namespace(claim))
        return ready
