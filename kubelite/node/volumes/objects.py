"""The node's view of the ConfigMaps and Secrets its pods' volumes read, kept by watches.

As the kubelet's watch-based object manager: one list+watch per referenced object,
narrowed by ``fieldSelector=metadata.name=<name>`` in its namespace (the only kind of
read the Node authorizer grants a node), started when a pod first needs the object and
stopped when no pod of the node references it any more. A change of a watched object
calls back every pod that uses it, which then rewrites its volumes.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kubelite.api.resources import (
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    SECRETS,
    SERVICEACCOUNTS,
)
from kubelite.client.errors import NotFound
from kubelite.client.informer import Informer
from kubelite.client.rest import Client

from .base import Obj, Ref

log = logging.getLogger("kubelite.node")
SYNC_WAIT = 10.0   # how long a first read waits for its watch to list, before a plain GET


class WatchedObjects:
    """Reference-counted per-object informers, and TokenRequests, for the pods of a node."""

    def __init__(self, client: Client):
        self.client = client
        self._informers: dict[Ref, Informer] = {}
        self._owners: dict[str, tuple[set[Ref], Callable[[], None]]] = {}
        self._stopping: set[asyncio.Task[None]] = set()   # referenced until each stop is done

    def _informer(self, ref: Ref) -> Informer:
        inf = self._informers.get(ref)
        if inf is None:
            kind, ns, name = ref
            inf = Informer(self.client, SECRETS if kind == "Secret" else CONFIGMAPS, namespace=ns,
                           field_selector=f"metadata.name={name}")
            inf.add_handler(*self._handlers(ref))
            self._informers[ref] = inf
            inf.start()
        return inf

    def _handlers(self, ref: Ref) -> tuple[Callable[[Obj], None], Callable[[Obj, Obj], None], Callable[[Obj], None]]:
        def added(_obj: Obj) -> None:
            self._changed(ref)

        def updated(_old: Obj, _new: Obj) -> None:
            self._changed(ref)
        return added, updated, added

    def _changed(self, ref: Ref) -> None:
        for refs, notify in list(self._owners.values()):
            if ref in refs:
                notify()

    async def get_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The object from its watch (started if needed); a GET while the watch has not listed."""
        ref = (kind, namespace, name)
        inf = self._informer(ref)
        try:
            await asyncio.wait_for(inf.wait_synced(), SYNC_WAIT)
            return inf.get_by_name(namespace, name)
        except TimeoutError:
            pass
        try:
            return await self.client.resource(SECRETS if kind == "Secret" else CONFIGMAPS).get(name, namespace)
        except NotFound:
            return None

    async def get_storage(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A claim or volume, read when a pod's volume is set up (no watch: it is used once)."""
        info = PERSISTENTVOLUMECLAIMS if kind == "PersistentVolumeClaim" else PERSISTENTVOLUMES
        try:
            return await self.client.resource(info).get(name, namespace)
        except NotFound:
            return None

    async def request_token(self, namespace: str, service_account: str, request: Obj) -> Obj:
        """POST serviceaccounts/<name>/token."""
        out: Obj = await self.client.resource(SERVICEACCOUNTS).create_subresource(service_account, namespace,
                                                                                   "token", request)
        return out

    def watch_objects(self, owner: str, refs: set[Ref], on_change: Callable[[], None]) -> None:
        """Follow `refs` for `owner` (a pod uid); objects nobody follows any more are unwatched."""
        self._owners[owner] = (set(refs), on_change)
        for ref in refs:
            self._informer(ref)
        self._drop_unused()

    def forget(self, owner: str) -> None:
        """`owner` needs no object any more."""
        self._owners.pop(owner, None)
        self._drop_unused()

    def _drop_unused(self) -> None:
        used = set().union(*(refs for refs, _ in self._owners.values())) if self._owners else set()
        for ref in [r for r in self._informers if r not in used]:
            task = asyncio.get_running_loop().create_task(self._informers.pop(ref).stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def stop(self) -> None:
        """Stop every watch."""
        infs = list(self._informers.values())
        self._informers.clear()
        await asyncio.gather(*(i.stop() for i in infs), return_exceptions=True)
