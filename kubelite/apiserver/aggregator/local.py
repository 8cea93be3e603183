"""The APIServices of the groups this server answers itself (upstream's autoregister).

kube-apiserver lists one APIService per built-in group/version, without a service
(``Local``), labelled ``kube-aggregator.kubernetes.io/automanaged: onstart``; the groups of
CustomResourceDefinitions get theirs too, labelled ``"true"``, and lose them with their last
CRD.  The priorities are upstream's table (they order ``/apis``).
"""
from __future__ import annotations

from typing import Any

from kubelite.api import errors, meta, resources
from kubelite.api.resources import APISERVICES, CONFIGMAPS
from kubelite.apiserver.aggregator.priorities import CRD_PRIORITY, PRIORITIES
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]

AUTOMANAGED = "kube-aggregator.kubernetes.io/automanaged"

def apiservice_name(group: str, version: str) -> str:
    """``version.group`` (``v1.`` for the core group)."""
    return f"{version}.{group}"


def desired() -> dict[str, Obj]:
    """The local APIServices the catalogue calls for, by name."""
    static = {r.gvr[:2] for r in resources.RESOURCES}
    out: dict[str, Obj] = {}
    for group, versions in resources.group_versions().items():
        for version in versions:
            builtin = (group, version) in static
            gp, vp = PRIORITIES.get((group, version), CRD_PRIORITY)
            name = apiservice_name(group, version)
            out[name] = {
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": name, "labels": {AUTOMANAGED: "onstart" if builtin else "true"}},
                "spec": {"group": group, "version": version, "groupPriorityMinimum": gp, "versionPriority": vp},
            }
    return out


async def sync_local(registry: Registry) -> None:
    """Create the missing local APIServices and drop automanaged ones nothing serves now."""
    want = desired()
    have, _, _, _ = await registry.list(APISERVICES, "")
    names = {meta.name(o) for o in have}
    for name, obj in want.items():
        if name not in names:
            try:
                await registry.create(APISERVICES, "", obj)
            except errors.AlreadyExists:
                pass
    for o in have:
        labels = (o.get("metadata") or {}).get("labels") or {}
        if meta.name(o) in want or AUTOMANAGED not in labels or (o.get("spec") or {}).get("service"):
            continue
        try:
            await registry.delete(APISERVICES, "", meta.name(o), {})
        except errors.NotFound:
            pass


AUTH_CONFIGMAP = "extension-apiserver-authentication"
# The common name of the certificate the aggregator presents to extension servers.
PROXY_CLIENT_CN = "front-proxy-client"


def authentication_data(client_ca_pem: str, allowed_names: list[str]) -> dict[str, str]:
    """What extension API servers read to trust the aggregator's headers (upstream's
    cluster authentication trust controller writes the same keys)."""
    def js(v: list[str]) -> str:
        return "[" + ",".join(f'"{s}"' for s in v) + "]"
    return {
        "client-ca-file": client_ca_pem,
        "requestheader-allowed-names": js(allowed_names),
        "requestheader-client-ca-file": client_ca_pem,
        "requestheader-extra-headers-prefix": js(["X-Remote-Extra-"]),
        "requestheader-group-headers": js(["X-Remote-Group"]),
        "requestheader-uid-headers": js(["X-Remote-Uid"]),
        "requestheader-username-headers": js(["X-Remote-User"]),
    }


async def publish_authentication(registry: Registry, data: dict[str, str]) -> None:
    """Create or refresh kube-system/extension-apiserver-authentication."""
    try:
        cur = await registry.get(CONFIGMAPS, "kube-system", AUTH_CONFIGMAP)
    except errors.NotFound:
        await registry.create(CONFIGMAPS, "kube-system", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": AUTH_CONFIGMAP, "namespace": "kube-system"}, "data": data})
        return
    if cur.get("data") == data:
        return

    def mutate(o: Obj) -> Obj:
        o["data"] = dict(data)
        return o
    await registry.guaranteed_update(CONFIGMAPS, "kube-system", AUTH_CONFIGMAP, mutate)
