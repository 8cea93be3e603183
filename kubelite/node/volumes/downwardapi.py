"""downwardAPI volumes: fields of the pod and resources of its containers as files."""
from __future__ import annotations

import re

from .atomic import FileProjection
from .base import DEFAULT_MODE, Obj, SetupError, format_map, mode_of, resource_value

_INDEXED = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Obj, path: str) -> str:
    """A fieldRef a volume may use: name, namespace, uid, labels, annotations (or one of them)."""
    md = pod.get("metadata") or {}
    m = _INDEXED.match(path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(md.get(path.split(".")[1]) or {})
    simple = {"metadata.name": "name", "metadata.namespace": "namespace", "metadata.uid": "uid"}
    if path in simple:
        return str(md.get(simple[path], ""))
    raise SetupError(f"unsupported fieldPath: {path}")


def _container(pod: Obj, name: str) -> Obj:
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == name:
            return c
    raise SetupError(f"container {name!r} not found in the pod")


def payload(source: Obj, pod: Obj, *, default_mode: int | None = None) -> dict[str, FileProjection]:
    """The files of a downwardAPI volume (or projected source) for `pod`."""
    mode = default_mode if default_mode is not None else mode_of(source.get("defaultMode"), DEFAULT_MODE)
    out: dict[str, FileProjection] = {}
    for item in source.get("items") or []:
        path = str(item.get("path", ""))
        if item.get("fieldRef"):
            value = field_value(pod, str(item["fieldRef"].get("fieldPath", "")))
        elif item.get("resourceFieldRef"):
            ref = item["resourceFieldRef"]
            value = resource_value(_container(pod, str(ref.get("containerName", ""))), str(ref.get("resource", "")),
                                   ref.get("divisor"))
        else:
            continue
        out[path] = FileProjection(value.encode(), mode_of(item.get("mode"), mode))
    return out
