"""Discovery documents (aggregated v2/v2beta1 and legacy) and /version, from the catalogue.

The aggregated form is only sent when the client's Accept header asks for it, and the
response Content-Type then names the exact g/v/as parameters, because client-go picks
its decoder from that header (a plain application/json body is parsed as legacy).
"""
from __future__ import annotations

import hashlib
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from kubelite.api.resources import GROUP_ORDER, ResourceInfo, group_versions, in_group_version
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver.aggregator.priorities import group_priority
from kubelite.apiserver.negotiation import parse_accept
from kubelite.version import GIT_VERSION, KUBE_VERSION

Obj = dict[str, Any]



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


@dataclass(frozen=True)
class ExtraGroup:
    """A group served by extension API servers (APIServices with a service)."""

    name: str
    priority: int                  # the highest groupPriorityMinimum of its APIServices
    versions: tuple[str, ...]      # preferred first
    # version -> the APIResourceList its server gave (missing: not fetched yet)
    resources: dict[str, Obj] = field(default_factory=dict, compare=False)


def _ordered(extra: Sequence[ExtraGroup]) -> list[str | ExtraGroup]:
    """Local group names and extension groups in upstream's order: priority, then name."""
    items: list[str | ExtraGroup] = list(_groups())
    # The local groups keep their order; each extension group goes before the first group
    # that sorts after it.
    for g in sorted(extra, key=lambda e: (-e.priority, e.name)):
        def after(it: str | ExtraGroup, g: ExtraGroup = g) -> bool:
            prio, name = (it.priority, it.name) if isinstance(it, ExtraGroup) else (group_priority(it), it)
            return (-prio, name) > (-g.priority, g.name)
        at = next((i for i, it in enumerate(items) if after(it)), len(items))
        items.insert(at, g)
    return items


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


def _agg_from_list(rl: Obj) -> list[Obj]:
    """An extension's APIResourceList in the aggregated form (subresources under their parent)."""
    out: dict[str, Obj] = {}
    subs: list[Obj] = []
    for r in rl.get("resources") or []:
        if not isinstance(r, dict) or not r.get("name"):
            continue
        if "/" in r["name"]:
            subs.append(r)
            continue
        e: Obj = {"resource": r["name"],
                  "responseKind": {"group": r.get("group", ""), "version": r.get("version", ""), "kind": r.get("kind", "")},
                  "scope": "Namespaced" if r.get("namespaced") else "Cluster",
                  "singularResource": r.get("singularName") or str(r.get("kind", "")).lower(),
                  "verbs": sorted(r.get("verbs") or [])}
        if r.get("shortNames"):
            e["shortNames"] = list(r["shortNames"])
        if r.get("categories"):
            e["categories"] = list(r["categories"])
        out[r["name"]] = e
    for r in subs:
        parent, _, sub = r["name"].partition("/")
        if parent in out:
            out[parent].setdefault("subresources", []).append(
                {"subresource": sub, "responseKind": {"group": r.get("group", ""), "version": r.get("version", ""),
                                                     "kind": r.get("kind", "")},
                 "verbs": sorted(r.get("verbs") or [])})
    return list(out.values())


def _agg_extra(g: ExtraGroup) -> Obj:
    versions = [{"version": v, "resources": _agg_from_list(g.resources[v]), "freshness": "Current"}
                for v in g.versions if v in g.resources]
    return {"metadata": {"name": g.name, "creationTimestamp": None}, "versions": versions}


def aggregated(core: bool, version: str, extra: Sequence[ExtraGroup] = ()) -> Obj:
    """APIGroupDiscoveryList for /api (core) or /apis (with the extension groups)."""
    items = [_agg_group("", version)] if core else [
        _agg_extra(g) if isinstance(g, ExtraGroup) else _agg_group(g, version) for g in _ordered(extra)]
    # A group whose servers have not answered yet has nothing to list.
    items = [i for i in items if i["versions"]]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


def legacy_api(server_address: str) -> Obj:
    """APIVersions for /api."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_entry(g: str) -> Obj:
    vs = group_versions()[g]
    return {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
            "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}


def extra_group_entry(g: ExtraGroup) -> Obj:
    """The APIGroup entry of an extension group (built from its APIServices, as upstream)."""
    return {"name": g.name, "versions": [{"groupVersion": f"{g.name}/{v}", "version": v} for v in g.versions],
            "preferredVersion": {"groupVersion": f"{g.name}/{g.versions[0]}", "version": g.versions[0]}}


def legacy_apis(extra: Sequence[ExtraGroup] = ()) -> Obj:
    """APIGroupList for /apis."""
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [extra_group_entry(g) if isinstance(g, ExtraGroup) else _group_entry(g)
                       for g in _ordered(extra)]}


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


def discovery_response(request: web.Request, core: bool, server_address: str,
                       extra: Sequence[ExtraGroup] = ()) -> web.Response:
    """/api or /apis in the form the client asked for."""
    v = negotiate_aggregated(request)
    if not v:
        neg.wants(request, tables=False)  # 406 when no clause asks for something we write
    if v:
        body = orjson.dumps(aggregated(core, v, extra))
        etag = '"' + hashlib.sha512(body).hexdigest().upper() + '"'
        return web.Response(body=body, headers={
            "Content-Type": f"application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList",
            "Vary": "Accept", "ETag": etag, "Cache-Control": "public"})
    body = orjson.dumps(legacy_api(server_address) if core else legacy_apis(extra))
    return web.Response(body=body, content_type="application/json")
