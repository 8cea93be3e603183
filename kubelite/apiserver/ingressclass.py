"""Admission that gives a new Ingress the default IngressClass (upstream's DefaultIngressClass).

On create only, and only when the Ingress names no class at all (neither
``spec.ingressClassName`` nor the old ``kubernetes.io/ingress.class`` annotation): the
IngressClasses annotated ``ingressclass.kubernetes.io/is-default-class: "true"`` are
looked up and the newest one (ties: the first name) is written into the spec.  Several
default classes are allowed; upstream picks the newest in that case too.
"""
from __future__ import annotations

from typing import Any

from kubelite.api.resources import INGRESSCLASSES, INGRESSES, ResourceInfo
from kubelite.api.validation_ingress import CLASS_ANNOTATION, DEFAULT_CLASS_ANNOTATION
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]


def pick_default(classes: list[Obj]) -> Obj | None:
    """The default IngressClass: the newest of those annotated as default."""
    defaults = [c for c in classes
                if ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"]
    if not defaults:
        return None
    # RFC 3339 timestamps in UTC sort as strings; newest first, then by name.
    defaults.sort(key=lambda c: c["metadata"]["name"])
    defaults.sort(key=lambda c: c["metadata"].get("creationTimestamp") or "", reverse=True)
    return defaults[0]


class DefaultIngressClass:
    """The admission step; register ``admit`` with the registry."""

    def __init__(self, registry: Registry):
        self.registry = registry

    async def admit(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        """Fill spec.ingressClassName of a new Ingress that names no class."""
        if old is not None or info is not INGRESSES:
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        if spec.get("ingressClassName") is not None:
            return
        if CLASS_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {}):
            return
        classes, _, _, _ = await self.registry.list(INGRESSCLASSES, "")
        chosen = pick_default(classes)
        if chosen is not None:
            spec["ingressClassName"] = chosen["metadata"]["name"]
