"""Discovery documents (aggregated v2/v2beta1 and legacy) and /version, from the catalogue.

The aggregated form is only sent when the client's Accept header asks for it, and the
response Content-Type then names the exact g/v/as parameters, because client-go picks
its decoder from that header (a plain application/json body is parsed as legacy).
"""
from __future__ import annotations

import hashlib
import platform
from typing import Any

import orjson
from aiohttp import web

from kubelite.api.resources import GROUP_ORDER, ResourceInfo, group_versions, in_group_version
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver.negotiation import parse_accept

Obj = dict[str, Any]

KUBE_VERSION = (1, 33, 0)
GIT_VERSION = f"v{KUBE_VERSION[0]}.{KUBE_VERSION[1]}.{KUBE_VERSION[2]}+kubelite"


def version_info() -> Obj:
    """/version, shaped like kube-apiserver's."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": str(KUBE_VERSION[0]), "minor": str(KUBE_VERSION[1]), "emulationMajor": str(KUBE_VERSION[0]),
        "emulationMinor": str(KUBE_VERSION[1]), "minCompatibilityMajor": str(KUBE_VERSION[0]),
        "minCompatibilityMinor": str(KUBE_VERSION[1] - 1),
        "gitVersion": GIT_VERSION, "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-11-25T00:00:00Z",
        "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
        "platform": f"linux/{arch}",
    }


def _groups() -> list[str]:
    named = [g for g in group_versions() if g]
    return sorted(named, key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER), g))


def _agg_resource(r: ResourceInfo) -> Obj:
    out: Obj = {"resource": r.plural, "responseKind": {"group": "", "version": "", "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
                "verbs": sorted(r.verbs)}
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = []
    for s in r.subresources:
        subs.append({"subresource": s.name,
                     "responseKind": {"group": s.group, "version": s.version, "kind": s.kind or r.kind},
                     "verbs": sorted(s.verbs)})
    if subs:
        out["subresources"] = subs
    return out


def _agg_group(group: str, version: str) -> Obj:
    g: Obj = {"metadata": {"name": group, "creationTimestamp": None}, "versions": []}
    for v in group_versions()[group]:
        g["versions"].append({"version": v, "resources": [_agg_resource(r) for r in in_group_version(group, v)],
                              "freshness": "Current"})
    return g


def aggregated(core: bool, version: str) -> Obj:
    """APIGroupDiscoveryList for /api (core) or /apis."""
    groups = [""] if core else _groups()
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": [_agg_group(g, version) for g in groups]}


def legacy_api(server_address: str) -> Obj:
    """APIVersions for /api."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_entry(g: str) -> Obj:
    vs = group_versions()[g]
    return {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
            "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}


def legacy_apis() -> Obj:
    """APIGroupList for /apis."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_entry(g) for g in _groups()]}


def api_group(group: str) -> Obj | None:
    """APIGroup for /apis/<group>."""
    if group not in group_versions() or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group)}


def resource_list(group: str, version: str) -> Obj | None:
    """APIResourceList for /api/v1 or /apis/<g>/<v>; subresources are separate entries."""
    rs = in_group_version(group, version)
    if not rs:
        return None
    out = []
    for r in rs:
        e: Obj = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                  "verbs": sorted(r.verbs)}
        if r.short_names:
            e["shortNames"] = list(r.short_names)
        if r.categories:
            e["categories"] = list(r.categories)
        e["storageVersionHash"] = hashlib.sha256(f"{r.group}/{r.version}/{r.kind}".encode()).digest()[:8].hex()
        out.append(e)
        for s in r.subresources:
            se: Obj = {"name": f"{r.plural}/{s.name}", "singularName": "", "namespaced": r.namespaced,
                       "kind": s.kind or r.kind, "verbs": sorted(s.verbs)}
            if s.group:
                se["group"] = s.group
                se["version"] = s.version
            out.append(se)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def negotiate_aggregated(request: web.Request) -> str | None:
    """'v2' or 'v2beta1' when the client accepts aggregated discovery, else None."""
    for mt in parse_accept(request.headers.get("Accept", "")):
        if (mt.params.get("g") == "apidiscovery.k8s.io" and mt.params.get("as") == "APIGroupDiscoveryList"
                and mt.params.get("v") in ("v2", "v2beta1")):
            return mt.params["v"]
    return None


def discovery_response(request: web.Request, core: bool, server_address: str) -> web.Response:
    """/api or /apis in the form the client asked for."""
    v = negotiate_aggregated(request)
    if not v:
        neg.wants(request, tables=False)  # 406 when no clause asks for something we write
    if v:
        body = orjson.dumps(aggregated(core, v))
        etag = '"' + hashlib.sha512(body).hexdigest().upper() + '"'
        return web.Response(body=body, headers={
            "Content-Type": f"application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList",
            "Vary": "Accept", "ETag": etag, "Cache-Control": "public"})
    body = orjson.dumps(legacy_api(server_address) if core else legacy_apis())
    return web.Response(body=body, content_type="application/json")
