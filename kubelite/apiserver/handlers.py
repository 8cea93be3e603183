"""HTTP handlers for resource paths: parse the URL, negotiate, call the registry.

URL shapes (as kube-apiserver's installer):
  /api/v1/<plural>[/<name>[/<sub>[/<rest>]]]
  /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>[/<rest>]]]
  /apis/<group>/<version>/… the same
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubelite.api import errors, meta
from kubelite.api.resources import NAMESPACES, ResourceInfo, lookup
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]


@dataclass
class Target:
    """What a resource URL points at."""

    info: ResourceInfo
    namespace: str
    name: str
    subresource: str
    rest: str  # the remainder after a proxy subresource


def parse_path(path: str) -> Target | None:
    """Resolve a request path to a resource target (None: not a resource path)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    ns = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        ns, rest = rest[1], rest[2:]
    info = lookup(group, version, rest[0])
    if info is None:
        raise errors.no_such_path()
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    tail = "/".join(rest[3:]) if len(rest) > 3 else ""
    if path.endswith("/") and sub in ("proxy",):
        tail += "/"
    if sub and info.subresource(sub) is None:
        raise errors.no_such_path()
    if len(rest) > 3 and sub != "proxy":
        raise errors.no_such_path()
    if info.namespaced and name and not ns and info is not NAMESPACES:
        raise errors.no_such_path()
    return Target(info, ns, name, sub, tail)


_BOOL = {"true": True, "false": False, "1": True, "0": False}


def qbool(request: web.Request, name: str) -> bool:
    """A boolean query parameter."""
    return _BOOL.get(request.query.get(name, "").lower(), False)


def dry_run(request: web.Request) -> bool:
    """dryRun=All (anything else is rejected like upstream)."""
    vals = request.query.getall("dryRun", [])
    for v in vals:
        if v != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(vals)


def field_validation(request: web.Request) -> str:
    """fieldValidation: Strict, Warn (the default) or Ignore."""
    v = request.query.get("fieldValidation", "Warn") or "Warn"
    if v not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f'fieldValidation: Unsupported value: "{v}": supported values: "Ignore", "Strict", "Warn"')
    return v


_PATH_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def prune(obj: Obj, paths: list[str]) -> None:
    """Drop unknown fields (given as ``spec.containers[0].foo`` paths) from obj."""
    for p in paths:
        tokens = [(m.group(1), m.group(2)) for m in _PATH_RE.finditer(p)]
        cur: Any = obj
        for i, (k, idx) in enumerate(tokens):
            last = i == len(tokens) - 1
            if idx is not None:
                n = int(idx)
                if not isinstance(cur, list) or n >= len(cur):
                    break
                cur = cur[n]
                continue
            if not isinstance(cur, dict) or k not in cur:
                break
            if last:
                del cur[k]
            else:
                cur = cur[k]


def check_fields(request: web.Request, obj: Obj) -> list[str]:
    """Apply fieldValidation: 400 under Strict, warnings under Warn; always prune."""
    from kubelite.api.protobuf import unknown_fields
    mode = field_validation(request)
    unknown = unknown_fields(obj)
    if not unknown:
        return []
    if mode == "Strict":
        msg = ", ".join(f'unknown field "{p}"' for p in unknown)
        raise errors.bad_request(f"strict decoding error: {msg}")
    prune(obj, unknown)
    if mode == "Warn":
        return [f'unknown field "{p}"' for p in unknown]
    return []


def warning_headers(warnings: list[str]) -> dict[str, str]:
    """``Warning: 299 - "…"`` headers, which kubectl prints as ``Warning: …``."""
    if not warnings:
        return {}
    return {"Warning": ", ".join(f'299 - "{w}"' for w in warnings)}


def check_kind(info: ResourceInfo, obj: Obj) -> None:
    """A body whose apiVersion/kind is another resource's is a 400, as upstream."""
    kind = obj.get("kind")
    av = obj.get("apiVersion")
    if kind and kind != info.kind:
        raise errors.bad_request(f"the API version in the data ({av}) does not match the expected API version ({info.api_version})"
                                 if av and av != info.api_version else
                                 f'{kind} in version "{info.version}" cannot be handled as a {info.kind}: no kind "{kind}" is registered for version "{info.api_version}" in scheme "pkg/api/legacyscheme/scheme.go:30"')
    if av and av != info.api_version:
        raise errors.bad_request(f"the API version in the data ({av}) does not match the expected API version ({info.api_version})")
    obj["kind"] = info.kind
    obj["apiVersion"] = info.api_version


def manager_name(request: web.Request) -> str:
    """fieldManager, or the User-Agent's program name as upstream does."""
    fm = request.query.get("fieldManager", "")
    if fm:
        if len(fm) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be longer than 128")
        return fm
    ua = request.headers.get("User-Agent", "unknown")
    return ua.split("/", 1)[0][:128] or "unknown"


def managed_fields_updater(request: web.Request, info: ResourceInfo, subresource: str = "") -> Callable[[Obj | None, Obj], None]:
    """A hook recording the writer in metadata.managedFields (operation Update)."""
    from kubelite.api.patch import update_managed_fields
    manager = manager_name(request)

    def hook(old: Obj | None, new: Obj) -> None:
        update_managed_fields(old, new, manager=manager, operation="Update", api_version=info.api_version,
                              now=meta.rfc3339(), subresource=subresource)
    return hook


def list_kind(info: ResourceInfo) -> str:
    """``PodList`` etc."""
    return info.list_kind or f"{info.kind}List"


def to_list(info: ResourceInfo, items: list[Obj], rv: int, cont: str, remaining: int | None) -> Obj:
    """A List object; ``items`` is always a list, never null."""
    md: Obj = {"resourceVersion": str(rv)}
    if cont:
        md["continue"] = cont
    if remaining:
        md["remainingItemCount"] = remaining
    return {"kind": list_kind(info), "apiVersion": info.api_version, "metadata": md, "items": items}


def deleted_status(info: ResourceInfo, obj: Obj) -> Obj:
    """The Status upstream returns when a resource does not return the deleted object."""
    details = {"name": meta.name(obj), "kind": info.plural, "uid": meta.uid(obj)}
    if info.group:
        details["group"] = info.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


async def registry_from(request: web.Request) -> Registry:
    """The registry attached to the app."""
    return request.app["registry"]
