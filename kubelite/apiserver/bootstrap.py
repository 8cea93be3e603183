"""Objects a fresh cluster has before anyone asks: the system namespaces, their
``default`` ServiceAccounts, and the ``kubernetes`` Service with its endpoints (the
API server's own endpoint reconciler upstream)."""
from __future__ import annotations

from typing import Any

from kubelite.api import errors
from kubelite.api.resources import ENDPOINTS, ENDPOINTSLICES, NAMESPACES, SERVICEACCOUNTS, SERVICES, ResourceInfo
from kubelite.apiserver.admission.priority import ensure_system_priority_classes
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def _ensure(reg: Registry, info: ResourceInfo, ns: str, obj: Obj) -> Obj:
    try:
        return await reg.get(info, ns, obj["metadata"]["name"])
    except errors.NotFound:
        return await reg.create(info, ns, obj)


async def _upsert(reg: Registry, info: ResourceInfo, ns: str, obj: Obj, fields: tuple[str, ...]) -> None:
    try:
        cur = await reg.get(info, ns, obj["metadata"]["name"])
    except errors.NotFound:
        await reg.create(info, ns, obj)
        return
    if all(cur.get(f) == obj.get(f) for f in fields):
        return

    def mutate(o: Obj) -> Obj:
        for f in fields:
            o[f] = obj[f]
        return o
    await reg.guaranteed_update(info, ns, obj["metadata"]["name"], mutate)


async def bootstrap(reg: Registry, *, api_address: str, api_port: int) -> None:
    """Create (or repair) the built-in objects; idempotent across restarts."""
    for ns in SYSTEM_NAMESPACES:
        await _ensure(reg, NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await _ensure(reg, SERVICEACCOUNTS, ns, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                 "metadata": {"name": "default", "namespace": ns}})
    svc = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": reg.allocator.api_service_ip, "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}]},
    }
    await _ensure(reg, SERVICES, "default", svc)
    ep = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": api_address}],
                     "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}]}],
    }
    await _upsert(reg, ENDPOINTS, "default", ep, ("subsets",))
    eps = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [api_address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
    }
    await _upsert(reg, ENDPOINTSLICES, "default", eps, ("endpoints", "ports"))
    await ensure_system_priority_classes(reg)
