"""The scale subresource of custom resources: an autoscaling/v1 Scale read from, and
written to, the JSON paths the CRD names (specReplicasPath, statusReplicasPath,
labelSelectorPath)."""
from __future__ import annotations

from typing import Any

from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiextensions.printing import find

Obj = dict[str, Any]


def _steps(path: str) -> list[str]:
    return [p for p in path.strip().lstrip(".").split(".") if p]


def to_scale(info: CustomResourceInfo, obj: Obj) -> Obj:
    """autoscaling/v1 Scale view of a custom resource."""
    paths = info.scale or {}
    md = obj["metadata"]
    spec = find(obj, paths.get("specReplicasPath") or ".spec.replicas")
    status = find(obj, paths.get("statusReplicasPath") or ".status.replicas")
    out: Obj = {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
        "spec": {"replicas": spec[0] if spec and isinstance(spec[0], int) else 0},
        "status": {"replicas": status[0] if status and isinstance(status[0], int) else 0},
    }
    if paths.get("labelSelectorPath"):
        sel = find(obj, paths["labelSelectorPath"])
        if sel and isinstance(sel[0], str):
            out["status"]["selector"] = sel[0]
    return out


def set_replicas(info: CustomResourceInfo, obj: Obj, replicas: int) -> None:
    """Write the replica count at the CRD's specReplicasPath."""
    steps = _steps((info.scale or {}).get("specReplicasPath") or ".spec.replicas")
    cur = obj
    for step in steps[:-1]:
        nxt = cur.get(step)
        if not isinstance(nxt, dict):
            nxt = cur[step] = {}
        cur = nxt
    cur[steps[-1]] = replicas
