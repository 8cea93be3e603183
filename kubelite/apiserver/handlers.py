"""HTTP handlers for resource paths: parse the URL, negotiate, call the registry.

URL shapes (as kube-apiserver's installer):
  /api/v1/<plural>[/<name>[/<sub>[/<rest>]]]
  /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>[/<rest>]]]
  /apis/<group>/<version>/… the same
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from kubelite.api import errors, meta, typeddecode
from kubelite.api.resources import CUSTOMRESOURCEDEFINITIONS, NAMESPACES, ResourceInfo, by_kind, lookup
from kubelite.api.validation_common import go_quote
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiextensions.openapi import crd_schema
from kubelite.apiextensions.schema import unknown_fields as schema_unknown_fields
from kubelite.apiserver import negotiation as neg
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


def query_int(request: web.Request, name: str) -> int:
    """An int64 query parameter (400 with strconv's words when it is not one)."""
    text = request.query.get(name, "")
    if not _INT_RE.fullmatch(text):
        raise errors.bad_request(f"{name}: strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    value = int(text, 10)
    if not -(1 << 63) <= value < 1 << 63:
        raise errors.bad_request(f"{name}: strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


_INT_RE = re.compile(r"[+-]?[0-9]+")


def validate_list_options(request: web.Request, *, watch: bool) -> None:
    """ValidateListOptions: the resourceVersionMatch rules for lists and watches (422
    ``ListOptions.meta.k8s.io "" is invalid``, as upstream), limit and timeoutSeconds as int64."""
    q = request.query
    for name in ("limit", "timeoutSeconds"):
        if q.get(name):
            query_int(request, name)
    match = q.get("resourceVersionMatch", "")
    causes: list[errors.Cause] = []
    if watch:
        if "sendInitialEvents" in q and match != "NotOlderThan":
            causes.append(errors.Cause("FieldValueForbidden", "Forbidden: sendInitialEvents requires setting "
                                       "resourceVersionMatch to NotOlderThan", "resourceVersionMatch"))
        if match:
            if "sendInitialEvents" not in q:
                causes.append(errors.Cause("FieldValueForbidden", "Forbidden: resourceVersionMatch is forbidden for "
                                           "watch unless sendInitialEvents is provided", "resourceVersionMatch"))
            if match != "NotOlderThan":
                causes.append(errors.Cause("FieldValueNotSupported", f"Unsupported value: {go_quote(match)}: "
                                           'supported values: "NotOlderThan"', "resourceVersionMatch"))
            if q.get("continue"):
                causes.append(errors.Cause("FieldValueForbidden", "Forbidden: resourceVersionMatch is forbidden when "
                                           "continue is provided", "resourceVersionMatch"))
    else:
        if match:
            if not q.get("resourceVersion"):
                causes.append(errors.Cause("FieldValueForbidden", "Forbidden: resourceVersionMatch is forbidden "
                                           "unless resourceVersion is provided", "resourceVersionMatch"))
            if q.get("continue"):
                causes.append(errors.Cause("FieldValueForbidden", "Forbidden: resourceVersionMatch is forbidden when "
                                           "continue is provided", "resourceVersionMatch"))
            if match not in ("Exact", "NotOlderThan"):
                causes.append(errors.Cause("FieldValueNotSupported", f"Unsupported value: {go_quote(match)}: "
                                           'supported values: "Exact", "NotOlderThan", ""', "resourceVersionMatch"))
            if match == "Exact" and q.get("resourceVersion") == "0":
                causes.append(errors.Cause("FieldValueForbidden", 'Forbidden: resourceVersionMatch "exact" is '
                                           'forbidden for resourceVersion "0"', "resourceVersionMatch"))
        if "sendInitialEvents" in q:
            causes.append(errors.Cause("FieldValueForbidden", "Forbidden: sendInitialEvents is forbidden for list",
                                       "sendInitialEvents"))
    if causes:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", causes)


def prune(unknown: Sequence[typeddecode.Unknown]) -> None:
    """Drop the unknown fields typed decoding found."""
    for u in unknown:
        u.container.pop(u.key, None)


def check_fields(request: web.Request, obj: Obj, *, body: bytes | None = None, ctype: str = "",
                 duplicates: Sequence[str] = (), unknown: Sequence[typeddecode.Unknown] | None = None) -> list[str]:
    """Apply fieldValidation to unknown and repeated fields: 400 under Strict, warnings
    under Warn; unknown fields are always pruned.

    ``body``/``ctype``: the raw create/update body, scanned for repeated keys;
    ``duplicates``: repeated-key messages found elsewhere (a patch's own body);
    ``unknown``: the unknown-field paths typed decoding found (computed when None)."""
    from kubelite.apiserver import strictdecode
    mode = field_validation(request)
    if unknown is None:
        unknown = typed_unknown(obj, str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))
    if mode == "Ignore":
        prune(unknown)
        return []
    paths = [u.path for u in unknown]
    base = (ctype or "application/json").split(";")[0].strip().lower()
    yaml_lines: list[str] = []
    if body is not None and base == "application/json":
        problems = strictdecode.json_strict_messages(body, paths)
    else:
        if body is not None and base == "application/yaml":
            yaml_lines = strictdecode.yaml_duplicate_lines(body)
        problems = [f'unknown field "{p}"' for p in paths]
    problems = [*duplicates, *problems]
    if mode == "Strict" and (problems or yaml_lines):
        parts = [yaml_unmarshal_error(yaml_lines)] if yaml_lines else []
        raise errors.bad_request("strict decoding error: " + ", ".join(parts + problems))
    prune(unknown)
    return yaml_lines + problems


# -- typed decoding ------------------------------------------------------------------------

def typed_unknown(obj: Obj, api_version: str, kind: str) -> list[typeddecode.Unknown]:
    """Type-check ``obj`` as the Go struct of apiVersion/kind (normalising nulls) and
    return its unknown fields; raises typeddecode.TypeMismatch / TooDeep.  A kind without
    a schema is only bounded in depth, and reports no unknown fields."""
    message = typeddecode.message_for(api_version, kind)
    if message is None:
        typeddecode.bounded(obj)
        custom = by_kind(api_version, kind)
        if isinstance(custom, CustomResourceInfo):
            return custom_unknown(obj, custom.schema)
        if custom is CUSTOMRESOURCEDEFINITIONS:
            return custom_unknown(obj, crd_schema())
        return []
    return typeddecode.check(obj, message)


def custom_unknown(obj: Obj, schema: Obj | None) -> list[typeddecode.Unknown]:
    """The unknown fields of a custom resource (or a CRD): its metadata typed as
    ObjectMeta, the rest by the structural schema (what upstream prunes)."""
    out: list[typeddecode.Unknown] = []
    md = obj.get("metadata")
    if md is not None and not isinstance(md, dict):
        raise errors.bad_request(f"unable to decode {obj.get('kind') or 'the object'}: "
                                 ".metadata accessor error: not a map: the metadata must be an object")
    if isinstance(md, dict):
        out = [u._replace(path="metadata." + u.path) for u in typeddecode.check(md, "meta.v1.ObjectMeta")]
    return out + schema_unknown_fields(obj, schema)


def decode_typed(obj: Obj, api_version: str, kind: str, *, body: bytes | None = None,
                 ctype: str = "") -> list[typeddecode.Unknown]:
    """Typed decoding of a request body: 400 with the decoder's words, as upstream's
    ``Deployment in version "v1" cannot be handled as a Deployment: json: cannot
    unmarshal …``; returns the unknown fields."""
    version = api_version.rpartition("/")[2]
    try:
        return typed_unknown(obj, api_version, kind)
    except typeddecode.TypeMismatch as e:
        if body is not None and (ctype or "application/json").split(";")[0].strip().lower() == "application/json":
            e.literal = number_literal(body, e.location)
        raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {e.json_message()}') \
            from None
    except typeddecode.TooDeep:
        raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                                 f"json: exceeded max depth of {typeddecode.MAX_DEPTH}") from None


def decode_object(request: web.Request, api_version: str, kind: str, body: bytes,
                  info: ResourceInfo | None = None) -> tuple[Obj, list[str]]:
    """Everything upstream's decoder does with a create/update body before the handler
    sees an object: parse (JSON, YAML, protobuf), check apiVersion/kind, type every
    field, apply fieldValidation.  Returns the object and the warnings to send."""
    ctype = request.headers.get("Content-Type", "")
    obj = neg.decode_body(ctype, body, info)
    check_kind_of(api_version, kind, obj)
    unknown = decode_typed(obj, api_version, kind, body=body, ctype=ctype)
    return obj, check_fields(request, obj, body=body, ctype=ctype, unknown=unknown)


class _Lit(str):
    """A number as written in a JSON body."""


def number_literal(body: bytes, location: Sequence[str | int]) -> str:
    """The text of the number at ``location`` in a JSON body ("" when there is none):
    encoding/json quotes the literal (``number 1e30``), which parsing loses."""
    import json
    try:
        cur: Any = json.loads(body, parse_float=_Lit, parse_int=_Lit)
        for part in location:
            cur = cur[part]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        return ""
    return str(cur) if isinstance(cur, _Lit) else ""


def patch_type_error(e: typeddecode.TypeMismatch, ptype: str, patched: Obj, patch: Any) -> errors.StatusError:
    """The error upstream's patcher answers when a patch result does not decode into the
    kind: 422 ``patch: Invalid value`` (JSON and merge patches quote the patched object,
    strategic ones the patch)."""
    from kubelite.api.validation_common import GoRepr
    if ptype == "strategic":
        value: Any = GoRepr(go_quote(go_plus_v(patch)))
        detail = e.converter_message()
    else:
        value = GoRepr(go_quote(orjson.dumps(patched).decode()))
        detail = e.json_message()
    return errors.invalid("", "", "", [errors.Cause("FieldValueInvalid", f"Invalid value: {value}: {detail}", "patch")])


def go_plus_v(v: Any) -> str:
    """Go's ``%+v`` of a decoded JSON value (maps with sorted keys)."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_plus_v(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_plus_v(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return typeddecode.go_g(v)
    return str(v)


def check_name(obj: Obj, name: str, namespace: str) -> None:
    """checkName of upstream's update and patch handlers: the object must name the URL's
    object (an empty name too is a mismatch), and its namespace, when set, the URL's."""
    md = obj.get("metadata") or {}
    got = md.get("name") or ""
    if got != name:
        raise errors.bad_request(f"the name of the object ({got}) does not match the name on the URL ({name})")
    ns = md.get("namespace") or ""
    if namespace and ns and ns != namespace:
        raise errors.bad_request(f"the namespace of the object ({ns}) does not match the namespace on the request "
                                 f"({namespace})")


def yaml_unmarshal_error(lines: Sequence[str]) -> str:
    """go-yaml's text for repeated keys: ``yaml: unmarshal errors:`` and one indented line each."""
    return "yaml: unmarshal errors:\n  " + "\n  ".join(lines)


def warning_headers(warnings: list[str]) -> CIMultiDict[str]:
    """One ``Warning: 299 - "…"`` header per warning (quotes and backslashes escaped, as
    upstream writes them), which kubectl prints as ``Warning: …``.  A warning holding a
    control character (a field name from the request can) is dropped, as upstream's
    NewWarningHeader refuses it: it cannot be written into a header."""
    out: CIMultiDict[str] = CIMultiDict()
    for w in dict.fromkeys(warnings):
        if any(unicodedata.category(c) == "Cc" for c in w):
            continue
        out.add("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return out


def check_kind(info: ResourceInfo, obj: Obj) -> None:
    """A body whose apiVersion/kind is another resource's is a 400, as upstream."""
    check_kind_of(info.api_version, info.kind, obj)


def check_kind_of(api_version: str, kind_: str, obj: Obj) -> None:
    """check_kind for any apiVersion/kind (subresource bodies: Scale, Binding, Eviction);
    an empty kind or apiVersion is filled in from the URL's, as upstream defaults it."""
    kind = obj.get("kind")
    av = obj.get("apiVersion")
    version = api_version.rpartition("/")[2]
    mismatch = f"the API version in the data ({av}) does not match the expected API version ({api_version})"
    if kind and kind != kind_:
        raise errors.bad_request(mismatch if av and av != api_version else
                                 f'{kind} in version "{version}" cannot be handled as a {kind_}: '
                                 f'no kind "{kind}" is registered for version "{api_version}" '
                                 'in scheme "pkg/api/legacyscheme/scheme.go:30"')
    if av and av != api_version:
        raise errors.bad_request(mismatch)
    obj["kind"] = kind_
    obj["apiVersion"] = api_version


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
    # As upstream's reset fields: a write to the main resource of a kind with a status
    # subresource does not own the status the strategy keeps or sets on it.
    reset = frozenset({"status"}) if info.has_status and not subresource else frozenset()

    def hook(old: Obj | None, new: Obj) -> None:
        update_managed_fields(old, new, manager=manager, operation="Update", api_version=info.api_version,
                              now=meta.rfc3339(), subresource=subresource, reset=reset)
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
