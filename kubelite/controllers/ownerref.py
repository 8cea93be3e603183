"""Finding the live controller an object's controller reference names, from an informer's cache."""
from __future__ import annotations

from typing import Any

from kubelite.api import meta
from kubelite.client.protocols import Lister

Obj = dict[str, Any]


def resolve_controller_ref(lister: Lister, namespace: str, ref: Obj | None, kind: str) -> Obj | None:
    """The cached object of ``kind`` that ``ref`` points at, or None when the kind differs, it is
    gone, or a new object took its name (its uid no longer matches)."""
    if ref is None or ref.get("kind") != kind:
        return None
    owner = lister.get(f"{namespace}/{ref.get('name')}")
    if owner is None or meta.uid(owner) != ref.get("uid"):
        return None
    return owner


def controlling_owner(lister: Lister, obj: Obj, kind: str) -> Obj | None:
    """The live ``kind`` controller of ``obj`` (same namespace), if any."""
    return resolve_controller_ref(lister, meta.namespace(obj), meta.controller_ref(obj), kind)
