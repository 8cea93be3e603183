"""Root CA publisher: a ``kube-root-ca.crt`` ConfigMap in every namespace.

Upstream twin: ``pkg/controller/certificates/rootcacertpublisher``.  Each namespace gets
a ConfigMap ``kube-root-ca.crt`` whose ``ca.crt`` is the cluster CA (PEM) and whose
``kubernetes.io/description`` annotation says what it is for.  A namespace is queued
when it appears or changes while Active, and whenever its ConfigMap is created, edited
or deleted, so a deleted one comes back and an edited one is put right.  Other keys and
annotations a user adds are left alone, as upstream does; only ``data`` is replaced.

The CA is the one this controller's own client trusts to reach the API server (the
controller manager's kubeconfig CA, as upstream's default root CA).  Without one
(plain HTTP) there is nothing to publish and the controller idles.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import CONFIGMAPS, NAMESPACES, ResourceInfo
from kubelite.client.errors import AlreadyExists, Forbidden, NotFound
from kubelite.client.informer import InformerFactory
from kubelite.client.rest import Client
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]

CONFIGMAP_NAME = "kube-root-ca.crt"
DATA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
# Our own wording of what the ConfigMap is for (upstream sets the same annotation key).
DESCRIPTION = ("The cluster's CA certificate, for pods that talk to the API server inside the cluster "
               "(its service address or kubernetes.default.svc) and need to verify its serving certificate.")
FIELD_MANAGER = "kube-controller-manager"


def _known(info: ResourceInfo | None) -> ResourceInfo:
    """A catalogue entry the controller cannot run without."""
    if info is None:
        raise RuntimeError("resource catalogue lacks a kind the root CA publisher needs")
    return info


def desired_configmap(namespace: str, ca_pem: str) -> Obj:
    """The ConfigMap the publisher wants in ``namespace``."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP_NAME, "namespace": namespace,
                         "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
            "data": {DATA_KEY: ca_pem}}


def needs_fix(cm: Obj, ca_pem: str) -> bool:
    """The ConfigMap's data or description differ from what the publisher keeps there."""
    return (cm.get("data") or {}) != {DATA_KEY: ca_pem} or not meta.annotations_of(cm).get(DESCRIPTION_ANNOTATION)


def fixed(cm: Obj, ca_pem: str) -> Obj:
    """``cm`` with its data and description put right (everything else kept)."""
    md = dict(cm.get("metadata") or {})
    md["annotations"] = {**(md.get("annotations") or {}), DESCRIPTION_ANNOTATION: DESCRIPTION}
    return {**cm, "metadata": md, "data": {DATA_KEY: ca_pem}}


def read_ca(client: Client) -> str:
    """The PEM of the CA the client trusts ('' when it has none)."""
    path = client.config.ca_file
    if not path:
        return ""
    with open(path) as f:
        return f.read()


class RootCACertPublisher:
    """Keeps ``kube-root-ca.crt`` in every Active namespace."""

    def __init__(self, client: Client, factory: InformerFactory, *, ca_pem: str | None = None, workers: int = 1):
        self.ca_pem = read_ca(client) if ca_pem is None else ca_pem
        self.namespaces = factory.informer(_known(NAMESPACES))
        self.configmaps = factory.informer(_known(CONFIGMAPS), field_selector=f"metadata.name={CONFIGMAP_NAME}")
        self.queue = WorkQueue("root-ca-cert-publisher")
        self.workers = workers
        self._rc = client.resource(_known(CONFIGMAPS))
        self.namespaces.add_handler(self._ns_added, self._ns_updated, None)
        self.configmaps.add_handler(self._cm_changed, lambda _old, cm: self._cm_changed(cm), self._cm_changed)

    def _ns_added(self, ns: Obj) -> None:
        self.queue.add(meta.name(ns))

    def _ns_updated(self, _old: Obj, ns: Obj) -> None:
        if (ns.get("status") or {}).get("phase", "Active") == "Active":
            self.queue.add(meta.name(ns))

    def _cm_changed(self, cm: Obj) -> None:
        if meta.name(cm) == CONFIGMAP_NAME:
            self.queue.add(meta.namespace(cm))

    async def sync(self, namespace: str) -> None:
        """Create or repair the namespace's ``kube-root-ca.crt``."""
        ns = self.namespaces.get(namespace)
        if ns is None or meta.is_deleting(ns):
            return
        cm = self.configmaps.get_by_name(namespace, CONFIGMAP_NAME)
        if cm is None:
            try:
                await self._rc.create(desired_configmap(namespace, self.ca_pem), namespace,
                                      field_manager=FIELD_MANAGER)
            except (NotFound, Forbidden, AlreadyExists):
                # Namespace gone or terminating: nothing to retry.  Already there: our cache
                # lags, and the ConfigMap's own event brings the namespace back if needed.
                return
            return
        if needs_fix(cm, self.ca_pem):
            try:
                await self._rc.update(fixed(cm, self.ca_pem), field_manager=FIELD_MANAGER)
            except NotFound:  # deleted meanwhile: the delete event re-queues it
                return

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        if not self.ca_pem:
            log.info("root CA publisher: the controller manager has no CA file; nothing to publish")
            await stop.wait()
            return
        self.namespaces.start()
        self.configmaps.start()
        await asyncio.gather(self.namespaces.wait_synced(), self.configmaps.wait_synced())
        await process_until(self.queue, self.sync, stop, self.workers)
