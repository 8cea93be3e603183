"""The API server's storage admission: DefaultStorageClass (a new claim without a class
gets the default one) and StorageObjectInUseProtection (new claims and volumes get their
protection finalizers), as upstream's two plugins of these names."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api.resources import STORAGECLASSES, ResourceInfo
from kubelite.storage import util

Obj = dict[str, Any]


class Lister:
    """What admission needs of the registry: a list of one resource."""

    def __init__(self, list_fn: Callable[[ResourceInfo, str], Awaitable[tuple[list[Obj], Any, Any, Any]]]):
        self._list = list_fn

    async def classes(self) -> list[Obj]:
        """Every StorageClass."""
        items, _, _, _ = await self._list(STORAGECLASSES, "")
        return items


def _add_finalizer(obj: Obj, finalizer: str) -> None:
    md = obj.setdefault("metadata", {})
    fins = md.get("finalizers")
    if not isinstance(fins, list):
        fins = md["finalizers"] = []
    if finalizer not in fins:
        fins.append(finalizer)


def storage_admission(lister: Lister) -> Callable[[ResourceInfo, Obj, Obj | None], Awaitable[None]]:
    """The registry admission hook for claims and volumes (creates only)."""
    async def admit(info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        if old is not None or info.group != "" or info.plural not in ("persistentvolumeclaims", "persistentvolumes"):
            return
        if info.plural == "persistentvolumes":
            _add_finalizer(obj, util.PV_PROTECTION)
            return
        _add_finalizer(obj, util.PVC_PROTECTION)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        # Only an unset class is defaulted: "" asks for volumes without a class.
        if spec.get("storageClassName") is not None or util.ANN_BETA_CLASS in util.ann_of(obj):
            return
        default = util.default_class(await lister.classes())
        if default is not None:
            spec["storageClassName"] = default["metadata"]["name"]
    return admit
