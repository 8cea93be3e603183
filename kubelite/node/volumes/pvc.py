"""persistentVolumeClaim volumes: claim → bound PersistentVolume → a directory of the node.

As the kubelet resolves them: the claim must exist, not be deleted, and be bound; its
volume must be bound back to it.  kubelite's volumes are node directories (``hostPath``,
as the local-path provisioner makes them, or ``local``), used in place: the data outlives
the pod, and the next pod of the claim on this node sees it.
"""
from __future__ import annotations

import os

from . import hostpath
from .base import Obj, SetupError, VolumeAPI


async def setup(source: Obj, namespace: str, api: VolumeAPI) -> str:
    """The host directory of the claim's volume."""
    name = str(source.get("claimName") or "")
    claim = await api.get_storage("PersistentVolumeClaim", namespace, name)
    if claim is None:
        raise SetupError(f'failed to fetch PVC from API server: persistentvolumeclaims "{name}" not found')
    if (claim.get("metadata") or {}).get("deletionTimestamp"):
        raise SetupError(f"error processing PVC {namespace}/{name}: PVC is being deleted")
    volume = str((claim.get("spec") or {}).get("volumeName") or "")
    if not volume or (claim.get("status") or {}).get("phase") != "Bound":
        raise SetupError(f"error processing PVC {namespace}/{name}: PVC is not bound")
    pv = await api.get_storage("PersistentVolume", "", volume)
    if pv is None:
        raise SetupError(f'failed to fetch PV {volume} from API server: persistentvolumes "{volume}" not found')
    spec = pv.get("spec") or {}
    ref = spec.get("claimRef") or {}
    if ref.get("uid") != (claim.get("metadata") or {}).get("uid"):
        raise SetupError(f"error processing PVC {namespace}/{name}: PV {volume} is not bound to this claim")
    if spec.get("hostPath") is not None:
        return hostpath.setup(spec["hostPath"])
    if spec.get("local") is not None:
        path = str(spec["local"].get("path") or "")
        if not os.path.isdir(path):
            raise SetupError(f"path {path} does not exist")
        return path
    kinds = [k for k in spec if isinstance(spec.get(k), dict) and k not in ("capacity", "claimRef", "nodeAffinity")]
    raise SetupError(f"unsupported volume type {kinds[0] if kinds else 'unknown'} of PersistentVolume {volume}: "
                     "this node provides hostPath and local persistent volumes only")


def read_only(source: Obj) -> bool:
    """Whether the claim is mounted read-only in every container."""
    return bool(source.get("readOnly"))
