"""OpenAPI definitions of CustomResourceDefinitions and of the custom resources they serve.

The static documents are built from ``protoschema`` messages; kinds that have none (the
CRD itself and every custom resource) are named here with a ``custom:`` message name that
carries the definition name upstream publishes (``com.example.stable.v1.CronTab``, the
group reversed), and their schemas come from this module: a custom resource's schema is
its version's openAPIV3Schema, with apiVersion, kind and metadata added as upstream adds
them, so `kubectl explain` shows the CRD author's descriptions.
"""
from __future__ import annotations

import copy
import functools
from typing import Any

from kubelite.api import resources
from kubelite.api.resources import ResourceInfo
from kubelite.apiextensions.info import CustomResourceInfo

Obj = dict[str, Any]

PREFIX = "custom:"
CRD_DEF = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object. Servers should "
                    "convert recognized schemas to the latest internal value, and may reject unrecognized values.")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. Servers may infer "
             "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.")


def _reversed_group(group: str) -> str:
    return ".".join(reversed(group.split(".")))


def handles(info: ResourceInfo) -> bool:
    """Whether this module describes the resource (it has no protoschema message)."""
    return isinstance(info, CustomResourceInfo) or info is resources.CUSTOMRESOURCEDEFINITIONS


def message_names(info: ResourceInfo) -> tuple[str, str]:
    """The (kind, list kind) message names of a resource this module describes."""
    if info is resources.CUSTOMRESOURCEDEFINITIONS:
        return PREFIX + CRD_DEF, PREFIX + CRD_DEF + "List"
    base = f"{_reversed_group(info.group)}.{info.version}."
    list_kind = info.list_kind or info.kind + "List"
    return PREFIX + base + info.kind, PREFIX + base + list_kind


def _custom_infos() -> dict[str, CustomResourceInfo]:
    out: dict[str, CustomResourceInfo] = {}
    for r in resources.served():
        if isinstance(r, CustomResourceInfo):
            kind_msg, list_msg = message_names(r)
            out[kind_msg[len(PREFIX):]] = r
            out[list_msg[len(PREFIX):]] = r
    return out


def definition(name: str, ref: Any) -> Obj:
    """The v2 definition of a ``custom:`` message; ``ref(message)`` makes a $ref to a
    protoschema message (ObjectMeta, ListMeta)."""
    if name in (CRD_DEF, CRD_DEF + "List"):
        gvk = {"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition", "version": "v1"}
        if name.endswith("List"):
            return _list_definition(CRD_DEF, dict(gvk, kind="CustomResourceDefinitionList"), ref)
        return _crd_definition(gvk, ref)
    info = _custom_infos().get(name)
    if info is None:
        return {"type": "object"}
    gvk = {"group": info.group, "kind": info.kind, "version": info.version}
    kind_msg = message_names(info)[0]
    if name != kind_msg[len(PREFIX):]:
        return _list_definition(kind_msg[len(PREFIX):], dict(gvk, kind=info.list_kind or info.kind + "List"), ref)
    schema: Obj = copy.deepcopy(info.schema) if info.schema else {"type": "object",
                                                                   "x-kubernetes-preserve-unknown-fields": True}
    props: Obj = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION_DOC}
    props["kind"] = {"type": "string", "description": _KIND_DOC}
    props["metadata"] = ref("meta.v1.ObjectMeta")
    schema["x-kubernetes-group-version-kind"] = [gvk]
    return schema


@functools.cache
def crd_schema() -> Obj:
    """The CRD's own schema, for finding the unknown fields of CRD bodies."""
    return _crd_definition({"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition", "version": "v1"},
                           lambda _message: {"type": "object"})


def _list_definition(item_def: str, gvk: Obj, ref: Any) -> Obj:
    return {"description": f"{gvk['kind']} is a list of {item_def.rsplit('.', 1)[1]}", "type": "object",
            "required": ["items"],
            "properties": {"apiVersion": {"type": "string", "description": _API_VERSION_DOC},
                           "items": {"type": "array", "items": {"$ref": f"#/definitions/{item_def}"}},
                           "kind": {"type": "string", "description": _KIND_DOC},
                           "metadata": ref("meta.v1.ListMeta")},
            "x-kubernetes-group-version-kind": [gvk]}


def _s(desc: str, typ: str = "string", **rest: Any) -> Obj:
    return {"type": typ, "description": desc, **rest}


def _crd_definition(gvk: Obj, ref: Any) -> Obj:
    names = {"type": "object", "required": ["plural", "kind"], "description": "The names a custom resource is "
             "served under.", "properties": {
                 "plural": _s("The lower-case plural name, used in URLs: /apis/<group>/<version>/<plural>."),
                 "singular": _s("The lower-case singular name (default: the kind in lower case)."),
                 "kind": _s("The CamelCase kind of the objects."),
                 "listKind": _s("The kind of lists of the objects (default: <kind>List)."),
                 "shortNames": _s("Short names kubectl accepts for the resource.", "array", items={"type": "string"}),
                 "categories": _s("Groups such as 'all' the resource belongs to.", "array",
                                  items={"type": "string"})}}
    column = {"type": "object", "required": ["name", "type", "jsonPath"], "properties": {
        "name": _s("The column header."), "type": _s("The OpenAPI type of the column's values."),
        "format": _s("An optional OpenAPI format of the values."), "description": _s("What the column shows."),
        "priority": _s("0 for the standard view; higher values show in wide views only.", "integer",
                       format="int32"),
        "jsonPath": _s("Where in each object the value is found (a simple JSONPath).")}}
    version = {"type": "object", "required": ["name", "served", "storage"], "properties": {
        "name": _s("The version name, as in /apis/<group>/<version>."),
        "served": _s("Whether the version is served by the REST API.", "boolean"),
        "storage": _s("Whether objects are stored in this version; exactly one version has it.", "boolean"),
        "deprecated": _s("Whether requests of this version get a deprecation warning.", "boolean"),
        "deprecationWarning": _s("The warning returned to clients of a deprecated version."),
        "schema": {"type": "object", "description": "The validation schema of this version.", "properties": {
            "openAPIV3Schema": {"type": "object", "description": "A structural OpenAPI v3 schema.",
                                "x-kubernetes-preserve-unknown-fields": True}}},
        "subresources": {"type": "object", "description": "The status and scale subresources of this version.",
                         "properties": {
                             "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                        "description": "Enables the /status subresource."},
                             "scale": {"type": "object", "description": "Enables the /scale subresource.",
                                       "properties": {"specReplicasPath": _s("The path of the desired count."),
                                                      "statusReplicasPath": _s("The path of the observed count."),
                                                      "labelSelectorPath": _s("The path of the label selector.")}}}},
        "additionalPrinterColumns": {"type": "array", "items": column,
                                     "description": "Extra columns of kubectl get."},
        "selectableFields": {"type": "array", "items": {"type": "object", "properties": {
            "jsonPath": _s("A field usable in field selectors.")}}}}}
    spec = {"type": "object", "required": ["group", "names", "scope", "versions"],
            "description": "What the definition serves.", "properties": {
                "group": _s("The API group of the resources: /apis/<group>/..."),
                "names": names,
                "scope": _s("Namespaced or Cluster."),
                "versions": {"type": "array", "items": version, "description": "The served versions."},
                "conversion": {"type": "object", "description": "How versions convert into each other.",
                               "properties": {"strategy": _s("None (only apiVersion changes) or Webhook."),
                                              "webhook": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}},
                "preserveUnknownFields": _s("Deprecated: keep fields the schema does not name.", "boolean")}}
    condition = {"type": "object", "required": ["type", "status"], "properties": {
        "type": _s("Established, NamesAccepted or Terminating."), "status": _s("True, False or Unknown."),
        "lastTransitionTime": _s("When the status last changed.", format="date-time"),
        "reason": _s("A CamelCase reason."), "message": _s("Details for people.")}}
    status = {"type": "object", "description": "What the server has done with the definition.", "properties": {
        "conditions": {"type": "array", "items": condition, "x-kubernetes-list-type": "map",
                       "x-kubernetes-list-map-keys": ["type"]},
        "acceptedNames": names,
        "storedVersions": _s("Every version objects were ever stored in.", "array", items={"type": "string"})}}
    return {"description": "CustomResourceDefinition makes the API server serve a new kind of object.",
            "type": "object", "required": ["spec"],
            "properties": {"apiVersion": {"type": "string", "description": _API_VERSION_DOC},
                           "kind": {"type": "string", "description": _KIND_DOC},
                           "metadata": ref("meta.v1.ObjectMeta"), "spec": spec, "status": status},
            "x-kubernetes-group-version-kind": [gvk]}
