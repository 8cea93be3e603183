"""Names and pure helpers shared by the PV controller, the provisioner, the scheduler's
volume plugin and the node: annotations, claim/volume relations and the binding matcher
(upstream's ``findMatchingVolume``)."""
from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from kubelite.api import nodeselector, quantity
from kubelite.api.selectors import selector_from_dict

Obj = dict[str, Any]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def ann_of(obj: Obj) -> dict[str, str]:
    """The object's annotations ({} when none)."""
    return (obj.get("metadata") or {}).get("annotations") or {}


def claim_class(claim: Obj) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over the field."""
    beta = ann_of(claim).get(ANN_BETA_CLASS)
    if beta is not None:
        return beta
    return (claim.get("spec") or {}).get("storageClassName") or ""


def volume_class(pv: Obj) -> str:
    """GetPersistentVolumeClass."""
    beta = ann_of(pv).get(ANN_BETA_CLASS)
    if beta is not None:
        return beta
    return (pv.get("spec") or {}).get("storageClassName") or ""


def is_default_class(sc: Obj) -> bool:
    """Whether a StorageClass is marked as the cluster's default."""
    ann = ann_of(sc)
    return ann.get(ANN_DEFAULT_CLASS) == "true" or ann.get(ANN_BETA_DEFAULT_CLASS) == "true"


def default_class(classes: Iterable[Obj]) -> Obj | None:
    """The default class; with several, the newest (then the name first in order), as upstream."""
    best: Obj | None = None
    for sc in classes:
        if not is_default_class(sc):
            continue
        md, bmd = sc.get("metadata") or {}, (best or {}).get("metadata") or {}
        if best is None or (md.get("creationTimestamp") or "", bmd.get("name", "")) > \
                (bmd.get("creationTimestamp") or "", md.get("name", "")):
            best = sc
    return best


def requested_storage(claim: Obj) -> Decimal:
    """The claim's spec.resources.requests.storage (0 when unparsable)."""
    req = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    try:
        return quantity.parse(req) if req is not None else Decimal(0)
    except (ValueError, ArithmeticError):
        return Decimal(0)


def volume_capacity(pv: Obj) -> Decimal:
    """The volume's spec.capacity.storage (0 when unparsable)."""
    cap = ((pv.get("spec") or {}).get("capacity") or {}).get("storage")
    try:
        return quantity.parse(cap) if cap is not None else Decimal(0)
    except (ValueError, ArithmeticError):
        return Decimal(0)


def is_bound_to(pv: Obj, claim: Obj) -> bool:
    """IsVolumeBoundToClaim: claimRef names the claim (and its uid, when the ref has one)."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not isinstance(ref, dict):
        return False
    md = claim.get("metadata") or {}
    if ref.get("name") != md.get("name") or (ref.get("namespace") or "") != (md.get("namespace") or ""):
        return False
    return not ref.get("uid") or ref.get("uid") == md.get("uid")


def node_matches(pv: Obj, node: Obj) -> bool:
    """Whether the volume's required node affinity admits the node (no affinity: every node)."""
    req = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
    terms = req.get("nodeSelectorTerms")
    if not terms:
        return True
    return nodeselector.terms_match(terms, node)


def _modes_fit(claim: Obj, pv: Obj) -> bool:
    want = set((claim.get("spec") or {}).get("accessModes") or [])
    have = set((pv.get("spec") or {}).get("accessModes") or [])
    return want <= have


def _mode(obj: Obj) -> str:
    return (obj.get("spec") or {}).get("volumeMode") or "Filesystem"


def find_best_match(claim: Obj, volumes: Iterable[Obj], *, node: Obj | None = None,
                    delay_binding: bool = False) -> Obj | None:
    """The volume to bind the claim to, as upstream's findMatchingVolume: a volume already
    reserved for this claim wins; otherwise the smallest Available volume of the claim's
    class that is large enough, offers every access mode asked for, matches the selector
    and volume mode, and (with ``node``) can be reached from that node.  With delayed
    binding and no node yet, only reserved volumes are taken."""
    want = requested_storage(claim)
    cls = claim_class(claim)
    spec = claim.get("spec") or {}
    sel = selector_from_dict(spec["selector"]) if spec.get("selector") else None
    best: Obj | None = None
    best_cap = Decimal(0)
    for pv in volumes:
        pmd = pv.get("metadata") or {}
        if pmd.get("deletionTimestamp"):
            continue
        if _mode(pv) != _mode(claim):
            continue
        if node is not None and not node_matches(pv, node):
            continue
        if is_bound_to(pv, claim):
            return pv  # pre-bound (or provisioned) for this very claim
        if (pv.get("spec") or {}).get("claimRef") is not None:
            continue
        if (pv.get("status") or {}).get("phase") not in (None, "", "Available", "Pending"):
            continue
        if delay_binding and node is None:
            continue
        if volume_class(pv) != cls:
            continue
        if sel is not None and not sel.matches(pmd.get("labels") or {}):
            continue
        if not _modes_fit(claim, pv):
            continue
        cap = volume_capacity(pv)
        if cap < want:
            continue
        if best is None or cap < best_cap:
            best, best_cap = pv, cap
    return best


def claim_names(pod: Obj) -> list[str]:
    """The PersistentVolumeClaims a pod's volumes name, in volume order."""
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or []:
        src = (v or {}).get("persistentVolumeClaim")
        if isinstance(src, dict) and src.get("claimName"):
            out.append(str(src["claimName"]))
    return out


def pod_is_active(pod: Obj) -> bool:
    """A pod that may still use its volumes (not Succeeded or Failed)."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
