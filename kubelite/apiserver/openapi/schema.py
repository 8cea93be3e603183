"""OpenAPI schemas (definitions) of our kinds, from ``protoschema`` and ``patchmeta``.

A definition is built from a protoschema message: its JSON fields, their types (scalars,
repeated, maps, messages), the descriptions in ``fielddocs``, the patch extensions
(``x-kubernetes-patch-strategy`` …) from the same ``patchmeta`` table our strategic merge
patch and server-side apply use, and the group-version-kinds a kind is served as.
Definitions are written in v2 form; ``to_v3`` rewrites one for a v3 document.
"""
from __future__ import annotations

import functools
from typing import Any

from kubelite.api import protoschema as ps
from kubelite.api.patch import patchmeta as pm
from kubelite.api.resources import RESOURCES
from kubelite.apiextensions import openapi as custom_openapi
from kubelite.apiserver.openapi.fielddocs import ENUMS, FIELD_DOCS, GENERIC_DOCS, KIND_DOCS

Obj = dict[str, Any]


_PACKAGES = {
    "meta.v1": "io.k8s.apimachinery.pkg.apis.meta.v1",
    "resource": "io.k8s.apimachinery.pkg.api.resource",
    "intstr": "io.k8s.apimachinery.pkg.util.intstr",
    "runtime": "io.k8s.apimachinery.pkg.runtime",
    "metrics.v1beta1": "io.k8s.metrics.pkg.apis.metrics.v1beta1",
}
PATCH_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"


def definition_name(message: str) -> str:
    """Upstream's definition name of a protoschema message (``apps.v1.Deployment`` →
    ``io.k8s.api.apps.v1.Deployment``)."""
    if message.startswith(custom_openapi.PREFIX):  # CRDs and custom resources: named by apiextensions
        return message[len(custom_openapi.PREFIX):]
    package, _, name = message.rpartition(".")
    return f"{_PACKAGES.get(package) or 'io.k8s.api.' + package}.{name}"


# --------------------------------------------------------------------------- patch extensions

def _json_fields(message: str) -> dict[str, ps.Field]:
    """A message's JSON fields, with inlined embedded structs flattened in."""
    msg = ps.message(message)
    out: dict[str, ps.Field] = {}
    for f in msg.fields if msg else ():
        if f.inline:
            out.update(_json_fields(f.type))
        else:
            out[f.name] = f
    return out


def _walk_patchmeta(node: pm.Node, message: str, fields: dict, defs: dict) -> None:
    if not isinstance(node, pm.Struct) or ps.message(message) is None:
        return
    if node.atomic:
        defs.setdefault(message, {})["x-kubernetes-map-type"] = "atomic"
    known = _json_fields(message)
    for key, child in node.fields.items():
        f = known.get(key)
        if f is None:
            continue
        ext: Obj = {}
        nested = child
        if isinstance(child, pm.ListOf):
            if child.merge:
                ext["x-kubernetes-patch-strategy"] = "merge,retainKeys" if child.retain_keys else "merge"
                if child.merge_key:
                    ext["x-kubernetes-patch-merge-key"] = child.merge_key
            ext["x-kubernetes-list-type"] = child.list_type
            if child.list_type == "map":
                ext["x-kubernetes-list-map-keys"] = list(child.keys)
            nested = child.item
        elif isinstance(child, pm.MapOf):
            if child.atomic:
                ext["x-kubernetes-map-type"] = "atomic"
            nested = child.elem
        elif isinstance(child, pm.Struct) and child.retain_keys:
            ext["x-kubernetes-patch-strategy"] = "retainKeys"
        if ext:
            fields.setdefault((message, key), {}).update(ext)
        _walk_patchmeta(nested, f.type, fields, defs)


@functools.cache
def patch_extensions() -> tuple[dict[tuple[str, str], Obj], dict[str, Obj]]:
    """({(message, field): extensions}, {message: definition-level extensions}) from patchmeta."""
    fields: dict[tuple[str, str], Obj] = {}
    defs: dict[str, Obj] = {}
    for (api_version, kind), node in pm.SCHEMAS.items():
        message = ps.kind_message(api_version, kind)
        if message:
            _walk_patchmeta(node, message, fields, defs)
    return fields, defs


# --------------------------------------------------------------------------- definitions

_SCALAR_SCHEMAS = {
    "s": {"type": "string"}, "b": {"type": "boolean"}, "y": {"type": "string", "format": "byte"},
    "i32": {"type": "integer", "format": "int32"}, "i64": {"type": "integer", "format": "int64"},
    "f32": {"type": "number", "format": "float"}, "f64": {"type": "number", "format": "double"},
}
# JSON forms of the hand-coded special messages (v2); v3 differs for the two marked below.
_SPECIAL_SCHEMAS: dict[str, Obj] = {
    "meta.v1.Time": {"type": "string", "format": "date-time",
                     "description": "A timestamp in RFC 3339 form, to the second."},
    "meta.v1.MicroTime": {"type": "string", "format": "date-time",
                          "description": "A timestamp in RFC 3339 form, to the microsecond."},
    "meta.v1.Duration": {"type": "string", "description": "A duration such as 1h30m."},
    "meta.v1.FieldsV1": {"type": "object", "description": "A set of field paths, in a trie encoding."},
    "runtime.RawExtension": {"type": "object", "description": "An embedded object of any kind."},
    "intstr.IntOrString": {"type": "string", "format": "int-or-string",
                           "description": "An integer or a string."},
    "resource.Quantity": {"type": "string",
                          "description": "An amount with an optional suffix: 100m, 1.5, 64Mi, 2G."},
}
V3_SPECIAL: dict[str, Obj] = {
    "intstr.IntOrString": {"format": "int-or-string", "x-kubernetes-int-or-string": True,
                           "anyOf": [{"type": "integer"}, {"type": "string"}]},
    "resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
}


def _gvks() -> dict[str, list[Obj]]:
    """{message: [x-kubernetes-group-version-kind entries]} for every kind protoschema knows."""
    served = sorted({r.api_version for r in RESOURCES})
    out: dict[str, list[Obj]] = {}
    for (api_version, kind), message in ps.KINDS.items():
        for av in (served if api_version == "*" else [api_version]):
            group, _, version = av.rpartition("/")
            out.setdefault(message, []).append({"group": group, "kind": kind, "version": version})
    return out


class Definitions:
    """Collects the v2 definitions reachable from the messages asked for."""

    def __init__(self) -> None:
        self.defs: dict[str, Obj] = {}
        self.gvks = _gvks()
        self.field_ext, self.def_ext = patch_extensions()

    def ref(self, message: str) -> Obj:
        """A ``$ref`` to the message's definition, defining it (and its fields' types) first."""
        name = definition_name(message)
        if name not in self.defs:
            self.defs[name] = {}  # reserve: recursive types end here
            self.defs[name] = self._define(message)
        return {"$ref": f"#/definitions/{name}"}

    def _define(self, message: str) -> Obj:
        if message.startswith(custom_openapi.PREFIX):
            return custom_openapi.definition(message[len(custom_openapi.PREFIX):], self.ref)
        if message in _SPECIAL_SCHEMAS:
            return dict(_SPECIAL_SCHEMAS[message])
        msg = ps.message(message)
        if msg is None:
            raise KeyError(f"no protoschema message {message}")  # inconsistent schema data
        out: Obj = {}
        if message in KIND_DOCS:
            out["description"] = KIND_DOCS[message]
        props: Obj = {}
        if msg.is_kind:
            props["apiVersion"] = {"type": "string", "description": GENERIC_DOCS["apiVersion"]}
            props["kind"] = {"type": "string", "description": GENERIC_DOCS["kind"]}
        required = []
        docs = FIELD_DOCS.get(message, {})
        for name, f in _json_fields(message).items():
            prop = self._field(f)
            doc = docs.get(name) or (GENERIC_DOCS.get(name) if msg.is_kind else None)
            if doc:
                prop["description"] = doc
            if (message, name) in ENUMS:
                prop["enum"] = ENUMS[(message, name)]
            prop.update(self.field_ext.get((message, name), {}))
            props[name] = prop
            if f.always and f.type not in _SPECIAL_SCHEMAS:
                required.append(name)
        if required:
            out["required"] = required
        out["type"] = "object"
        out["properties"] = props
        out.update(self.def_ext.get(message, {}))
        if msg.is_kind and message in self.gvks:
            out["x-kubernetes-group-version-kind"] = self.gvks[message]
        return out

    def _type(self, typ: str) -> Obj:
        if typ in _SCALAR_SCHEMAS:
            return dict(_SCALAR_SCHEMAS[typ])
        msg = ps.message(typ)
        if msg is not None and msg.wrapper:  # Go named slice: JSON is the bare list
            return {"type": "array", "items": self._type(msg.fields[0].type)}
        return self.ref(typ)

    def _field(self, f: ps.Field) -> Obj:
        inner = self._type(f.type)
        if f.repeated:
            return {"type": "array", "items": inner}
        if f.map:
            return {"type": "object", "additionalProperties": inner}
        return inner


def to_v3(schema: Any) -> Any:
    """A v2 schema rewritten for v3: component refs, and a ref with siblings wrapped in allOf."""
    if isinstance(schema, list):
        return [to_v3(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: to_v3(v) for k, v in schema.items() if k != "$ref"}
    if "$ref" in schema:
        ref = {"$ref": schema["$ref"].replace("#/definitions/", "#/components/schemas/")}
        if not out:
            return ref
        out["allOf"] = [ref]
    return out
