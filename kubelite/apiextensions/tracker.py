"""What controllers know about custom resources: an informer on CRDs, read as upstream's
controllers read discovery.

The garbage collector and the namespace controller act on every resource the server
serves, custom ones included.  They are API clients, so they learn the custom ones the
way they learn everything else: by list+watch, here of CustomResourceDefinitions, turned
into catalogue entries with the same pure function the API server uses.  One entry per
CRD (its storage version) is enough to see every object, as upstream's collector watches
one version of each resource.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.api import meta, resources
from kubelite.api.resources import CUSTOMRESOURCEDEFINITIONS, ResourceInfo
from kubelite.apiextensions.info import CustomResourceInfo, infos_from_crd, storage_version
from kubelite.client.protocols import SharedInformer, SharedInformerFactory

Obj = dict[str, Any]
NewResource = Callable[[ResourceInfo], None]


class CustomResourceTracker:
    """Custom resources of established CRDs, as seen through a CRD informer."""

    def __init__(self, factory: SharedInformerFactory, on_new: NewResource | None = None,
                 on_gone: NewResource | None = None) -> None:
        self.informer: SharedInformer = factory.informer(CUSTOMRESOURCEDEFINITIONS)
        self._on_new = on_new
        self._on_gone = on_gone
        self._by_kind: dict[tuple[str, str], CustomResourceInfo] = {}
        self._storage: dict[str, CustomResourceInfo] = {}  # CRD name -> its storage-version entry
        self.informer.add_handler(self._seen, lambda _old, new: self._seen(new), self._gone)

    def _seen(self, crd: Obj) -> None:
        infos = infos_from_crd(crd)
        for info in infos:
            self._by_kind[(info.api_version, info.kind)] = info
        sv = storage_version(crd)
        storage = next((i for i in infos if i.version == sv), infos[0] if infos else None)
        name = meta.name(crd)
        if storage is not None and name not in self._storage:
            self._storage[name] = storage
            if self._on_new is not None:
                self._on_new(storage)

    def _gone(self, crd: Obj) -> None:
        storage = self._storage.pop(meta.name(crd), None)
        if storage is not None and self._on_gone is not None:
            self._on_gone(storage)
        for info in infos_from_crd(crd):
            self._by_kind.pop((info.api_version, info.kind), None)

    def resources(self) -> list[CustomResourceInfo]:
        """One entry (the storage version) per established CRD."""
        return list(self._storage.values())

    def by_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        """The resource of an apiVersion + kind: built-in, or custom."""
        return resources.by_kind(api_version, kind) if (api_version, kind) not in self._by_kind \
            else self._by_kind[(api_version, kind)]
