"""ServiceAccount controller: a ``default`` ServiceAccount in every active namespace.

Upstream twin: ``pkg/controller/serviceaccount/serviceaccounts_controller.go``.  A
namespace is queued when it appears or changes, and again when one of the ensured
ServiceAccounts is deleted, so a deleted ``default`` comes straight back.  Namespaces
that are not Active (Terminating) are left alone; a create that races a namespace's
deletion (403 / 404) is dropped, not retried.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import NAMESPACES, SERVICEACCOUNTS
from kubelite.client.errors import Conflict, Forbidden, NotFound
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]

ENSURED = ("default",)


class ServiceAccountsController:
    """Creates the ServiceAccounts every namespace must have."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 1,
                 names: tuple[str, ...] = ENSURED):
        self.namespaces = factory.informer(NAMESPACES)
        self.accounts = factory.informer(SERVICEACCOUNTS)
        self.names = names
        self.workers = workers
        self.queue = WorkQueue("serviceaccount")
        self._rc = client.resource(SERVICEACCOUNTS)
        self.namespaces.add_handler(self._ns_event, lambda _o, n: self._ns_event(n), None)
        self.accounts.add_handler(None, None, self._sa_deleted)

    def _ns_event(self, ns: Obj) -> None:
        self.queue.add(meta.name(ns))

    def _sa_deleted(self, sa: Obj) -> None:
        if meta.name(sa) in self.names:
            self.queue.add(meta.namespace(sa))

    async def sync(self, namespace: str) -> None:
        """Create whichever ensured ServiceAccounts ``namespace`` lacks."""
        ns = self.namespaces.get(namespace)
        if ns is None or meta.is_deleting(ns) or (ns.get("status") or {}).get("phase", "Active") != "Active":
            return
        for name in self.names:
            if self.accounts.get_by_name(namespace, name) is not None:
                continue
            try:
                await self._rc.create({"apiVersion": "v1", "kind": "ServiceAccount",
                                       "metadata": {"name": name, "namespace": namespace}}, namespace)
            except (Forbidden, NotFound, Conflict):
                continue  # terminating, gone, or already there

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self.namespaces.start()
        self.accounts.start()
        await asyncio.gather(self.namespaces.wait_synced(), self.accounts.wait_synced())
        await process_until(self.queue, self.sync, stop, self.workers)
