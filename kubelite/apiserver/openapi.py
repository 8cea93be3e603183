"""OpenAPI v2 (JSON and gnostic protobuf) and v3 (per group-version JSON) documents.

kubectl reads these for ``explain``, client-side ``apply``/``diff`` patch metadata and to
learn that the server validates fields itself (a ``fieldValidation`` query parameter on
the PATCH operation of a kind).  kubectl 1.27/1.28 only accept v2 as gnostic protobuf;
1.29+ read the v3 root, then the ``?hash=`` URL of one group-version.

Everything is built from our own data, never from upstream's swagger.json:

* schemas from ``protoschema`` (fields, JSON names, repeated/map, message types) — so the
  documents describe exactly the shapes our protobuf codec and storage accept;
* patch extensions (``x-kubernetes-patch-strategy`` …) from ``patch.patchmeta``, the same
  table our strategic merge patch and server-side apply use;
* paths and operations from the resource catalogue (``resources``);
* short descriptions of our own for the fields people ``explain`` most.

The three documents are built once, on first request, off the event loop, then served
with strong ETags (SHA-512 of the body, as kube-openapi does); a hashed v3 URL is marked
immutable and a stale hash is redirected to the current one.
"""
from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from kubelite.api import errors
from kubelite.api import protoschema as ps
from kubelite.api.patch import patchmeta as pm
from kubelite.api.protowire import FIXED64, VARINT
from kubelite.api.protowire import key as _key
from kubelite.api.protowire import len_field as _len_field
from kubelite.api.protowire import varint as _varint
from kubelite.api.resources import RESOURCES, ResourceInfo, group_versions
from kubelite.apiserver.discovery import GIT_VERSION

Obj = dict[str, Any]

V2_PROTO = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
# What clients ask for; Go's mime parser rejects the '@' form in a response header.
V2_PROTO_REQUESTED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

# --------------------------------------------------------------------------- names

_PACKAGES = {
    "meta.v1": "io.k8s.apimachinery.pkg.apis.meta.v1",
    "resource": "io.k8s.apimachinery.pkg.api.resource",
    "intstr": "io.k8s.apimachinery.pkg.util.intstr",
    "runtime": "io.k8s.apimachinery.pkg.runtime",
}
_GROUPS = {"core": "", "apps": "apps", "discovery": "discovery.k8s.io",
           "coordination": "coordination.k8s.io", "events": "events.k8s.io",
           "autoscaling": "autoscaling", "policy": "policy", "batch": "batch",
           "authentication": "authentication.k8s.io", "authorization": "authorization.k8s.io"}
PATCH_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"


def definition_name(message: str) -> str:
    """Upstream's definition name of a protoschema message (``apps.v1.Deployment`` →
    ``io.k8s.api.apps.v1.Deployment``)."""
    package, _, name = message.rpartition(".")
    return f"{_PACKAGES.get(package) or 'io.k8s.api.' + package}.{name}"


# --------------------------------------------------------------------------- descriptions
# Our own short wording; fields not listed here are left without a description.

_KIND_DOCS = {
    "apps.v1.Deployment": "A Deployment keeps a number of identical pods running from one pod "
                          "template, and rolls changes of that template out gradually through ReplicaSets.",
    "apps.v1.DeploymentSpec": "What the Deployment should look like.",
    "apps.v1.DeploymentStrategy": "How old pods are replaced by new ones when the pod template changes.",
    "apps.v1.RollingUpdateDeployment": "Limits that pace a rolling update.",
    "apps.v1.ReplicaSet": "A ReplicaSet keeps a fixed number of pods matching its selector running.",
    "core.v1.Pod": "A Pod is a group of containers scheduled together onto one node, sharing "
                   "network and volumes.",
    "core.v1.PodSpec": "What the pod should run and how.",
    "core.v1.PodTemplateSpec": "The pods a controller creates: their metadata and spec.",
    "core.v1.Container": "One container of a pod: the image to run and how to run it.",
    "core.v1.Service": "A Service gives a set of pods, chosen by a label selector, one stable "
                       "virtual address and name.",
    "core.v1.ServiceSpec": "How the Service routes traffic and to which pods.",
    "core.v1.ServicePort": "One port the Service exposes.",
    "meta.v1.ObjectMeta": "Metadata every persisted object carries: name, namespace, labels, "
                          "annotations and bookkeeping written by the server.",
    "meta.v1.LabelSelector": "Selects objects by their labels; all requirements must hold.",
}

_GENERIC_DOCS = {
    "apiVersion": "The versioned schema of this object, as group/version (v1 for the core group).",
    "kind": "The type of this object, in CamelCase.",
    "metadata": "Standard object metadata.",
    "spec": "The desired state, written by the user.",
    "status": "The observed state, written by the system. Read-only for users.",
}

_FIELD_DOCS: dict[str, dict[str, str]] = {
    "apps.v1.DeploymentSpec": {
        "replicas": "How many pods to run. Defaults to 1; leave it unset when an autoscaler manages it.",
        "selector": "Label selector of the pods this Deployment owns. It must match the labels of "
                    "the pod template and cannot change after creation.",
        "template": "The pod template new pods are made from. Changing it starts a rollout.",
        "strategy": "How to replace existing pods with new ones during a rollout.",
        "minReadySeconds": "Seconds a new pod must be ready, without crashing, before it counts as "
                           "available. Defaults to 0.",
        "revisionHistoryLimit": "How many old ReplicaSets to keep for rollbacks. Defaults to 10.",
        "paused": "While true, template changes do not start a rollout.",
        "progressDeadlineSeconds": "Seconds a rollout may go without progress before the Deployment "
                                   "reports it as failed (ProgressDeadlineExceeded). Defaults to 600.",
    },
    "apps.v1.DeploymentStrategy": {
        "type": "Recreate (stop all old pods first) or RollingUpdate (the default: replace pods "
                "step by step).",
        "rollingUpdate": "Pacing of a RollingUpdate. Only allowed when type is RollingUpdate.",
    },
    "apps.v1.RollingUpdateDeployment": {
        "maxSurge": "How many pods may exist above the desired count during the update: a number or "
                    "a percentage of replicas (rounded up). Defaults to 25%. Cannot be 0 when "
                    "maxUnavailable is 0.",
        "maxUnavailable": "How many pods may be unavailable during the update: a number or a "
                          "percentage of replicas (rounded down). Defaults to 25%. Cannot be 0 when "
                          "maxSurge is 0.",
    },
    "core.v1.PodSpec": {
        "containers": "The containers of the pod. At least one; they cannot be added or removed later.",
        "initContainers": "Containers run one after another, to completion, before the others start.",
        "volumes": "Volumes the containers may mount.",
        "restartPolicy": "Always (the default), OnFailure or Never: when to restart exited containers.",
        "nodeName": "The node this pod runs on; set by the scheduler unless given.",
        "nodeSelector": "Labels a node must have for the pod to be scheduled there.",
        "serviceAccountName": "The service account the pod runs as.",
        "terminationGracePeriodSeconds": "Seconds between the stop signal and a forced kill. Defaults to 30.",
        "affinity": "Scheduling preferences and requirements relative to nodes and other pods.",
        "tolerations": "Taints this pod tolerates.",
        "hostNetwork": "Use the node's network namespace.",
        "imagePullSecrets": "Secrets holding registry credentials for pulling the images.",
    },
    "core.v1.Container": {
        "name": "The container's name, unique within the pod (a DNS label).",
        "image": "The image to run.",
        "command": "Replaces the image's entrypoint.",
        "args": "Arguments to the entrypoint; replace the image's default arguments.",
        "env": "Environment variables set in the container.",
        "envFrom": "Sources whose keys all become environment variables.",
        "ports": "Ports the container listens on. Informational, except for named-port lookups.",
        "resources": "Compute resources requested and limits enforced.",
        "volumeMounts": "Pod volumes mounted into the container's filesystem.",
        "livenessProbe": "Periodic check; the container is restarted when it fails.",
        "readinessProbe": "Periodic check; the pod receives service traffic only while it passes.",
        "startupProbe": "Check that must pass once before the other probes start.",
        "imagePullPolicy": "Always, IfNotPresent or Never. Defaults to Always for :latest, else IfNotPresent.",
        "workingDir": "The working directory; defaults to the image's.",
        "securityContext": "Security options of this container.",
    },
    "core.v1.ServiceSpec": {
        "type": "ClusterIP (the default), NodePort, LoadBalancer or ExternalName.",
        "selector": "Traffic goes to the pods with these labels.",
        "ports": "The ports the Service exposes.",
        "clusterIP": "The virtual IP of the Service; allocated unless given. None makes a headless Service.",
        "clusterIPs": "The virtual IPs, one per IP family; the first equals clusterIP.",
        "externalIPs": "Extra addresses the Service also accepts traffic on.",
        "sessionAffinity": "None (the default) or ClientIP: keep a client on one pod.",
        "externalTrafficPolicy": "Cluster or Local: whether node ports may forward to other nodes.",
    },
    "core.v1.ServicePort": {
        "name": "The port's name; required when there are several ports.",
        "port": "The port the Service listens on.",
        "targetPort": "The pod port traffic goes to, as a number or a container port name. "
                      "Defaults to port.",
        "nodePort": "The port opened on every node for NodePort and LoadBalancer Services.",
        "protocol": "TCP (the default), UDP or SCTP.",
    },
    "meta.v1.ObjectMeta": {
        "name": "Unique name within the namespace. Cannot be changed.",
        "generateName": "Prefix from which the server makes a unique name when name is empty.",
        "namespace": "The namespace the object lives in.",
        "labels": "Key/value pairs used to select and group objects.",
        "annotations": "Key/value pairs for tools and people; not used for selection.",
        "uid": "Unique identifier set by the server.",
        "resourceVersion": "Opaque version of the object, changed on every write.",
        "generation": "Increases when the desired state changes. Set by the server.",
        "creationTimestamp": "When the object was created. Set by the server.",
        "deletionTimestamp": "When deletion was requested. Set by the server.",
        "ownerReferences": "Objects this one depends on; it is garbage collected after them.",
        "finalizers": "Tasks that must finish before the object is removed.",
        "managedFields": "Which manager set which fields (server-side apply bookkeeping).",
    },
}

# Allowed values of string fields whose set is fixed (explain prints them as ENUM).
_ENUMS: dict[tuple[str, str], list[str]] = {
    ("apps.v1.DeploymentStrategy", "type"): ["Recreate", "RollingUpdate"],
    ("core.v1.PodSpec", "restartPolicy"): ["Always", "Never", "OnFailure"],
    ("core.v1.Container", "imagePullPolicy"): ["Always", "IfNotPresent", "Never"],
    ("core.v1.ContainerPort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("core.v1.ServicePort", "protocol"): ["SCTP", "TCP", "UDP"],
    ("core.v1.ServiceSpec", "type"): ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    ("core.v1.ServiceSpec", "sessionAffinity"): ["ClientIP", "None"],
    ("core.v1.ServiceSpec", "externalTrafficPolicy"): ["Cluster", "Local"],
}

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


# --------------------------------------------------------------------------- schemas

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
_V3_SPECIAL = {
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


class _Definitions:
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
        if message in _SPECIAL_SCHEMAS:
            return dict(_SPECIAL_SCHEMAS[message])
        msg = ps.message(message)
        out: Obj = {}
        if message in _KIND_DOCS:
            out["description"] = _KIND_DOCS[message]
        props: Obj = {}
        if msg.is_kind:
            props["apiVersion"] = {"type": "string", "description": _GENERIC_DOCS["apiVersion"]}
            props["kind"] = {"type": "string", "description": _GENERIC_DOCS["kind"]}
        required = []
        docs = _FIELD_DOCS.get(message, {})
        for name, f in _json_fields(message).items():
            prop = self._field(f)
            doc = docs.get(name) or (_GENERIC_DOCS.get(name) if msg.is_kind else None)
            if doc:
                prop["description"] = doc
            if (message, name) in _ENUMS:
                prop["enum"] = _ENUMS[(message, name)]
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


def _to_v3(schema: Any) -> Any:
    """A v2 schema rewritten for v3: component refs, and a ref with siblings wrapped in allOf."""
    if isinstance(schema, list):
        return [_to_v3(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _to_v3(v) for k, v in schema.items() if k != "$ref"}
    if "$ref" in schema:
        ref = {"$ref": schema["$ref"].replace("#/definitions/", "#/components/schemas/")}
        if not out:
            return ref
        out["allOf"] = [ref]
    return out


# --------------------------------------------------------------------------- operations

_QUERY: dict[str, tuple[str, str]] = {
    "pretty": ("string", "If 'true', the output is indented."),
    "dryRun": ("string", "When All, the request is fully processed but nothing is persisted."),
    "fieldManager": ("string", "Name of the actor making this change, recorded in managedFields."),
    "fieldValidation": ("string", "What to do with unknown or duplicate fields in the body: Ignore "
                                  "(drop them), Warn (drop them with a warning; the default) or "
                                  "Strict (fail the request)."),
    "force": ("boolean", "Apply requests only: take over fields owned by other managers."),
    "gracePeriodSeconds": ("integer", "Seconds before the object is deleted; 0 means now."),
    "propagationPolicy": ("string", "Orphan, Background or Foreground: what happens to dependents."),
    "labelSelector": ("string", "Only objects whose labels match this selector."),
    "fieldSelector": ("string", "Only objects whose fields match this selector."),
    "limit": ("integer", "Most objects to return; the rest is fetched with continue."),
    "continue": ("string", "The continue token of the previous page."),
    "resourceVersion": ("string", "Which version of the data to read or watch from."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    "timeoutSeconds": ("integer", "Time limit of a list or watch call."),
    "watch": ("boolean", "Stream changes instead of returning a list."),
    "allowWatchBookmarks": ("boolean", "Let the watch send BOOKMARK events."),
    "sendInitialEvents": ("boolean", "Start the watch with the current objects as ADDED events."),
}
_WRITE_Q = ("dryRun", "fieldManager", "fieldValidation")
_LIST_Q = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
           "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_DELETE_Q = ("dryRun", "gracePeriodSeconds", "propagationPolicy")
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json", "application/strategic-merge-patch+json")
_PRODUCES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_OP_VERB = {"list": "list", "post": "create", "deletecollection": "deleteCollection",
            "get": "read", "put": "replace", "patch": "patch", "delete": "delete"}
_METHOD = {"list": "get", "post": "post", "deletecollection": "delete",
           "get": "get", "put": "put", "patch": "patch", "delete": "delete"}
_MESSAGE_SINGULAR = {"list": "list or watch objects of kind {k}", "post": "create a {k}",
                     "deletecollection": "delete a collection of {k}", "get": "read the specified {k}",
                     "put": "replace the specified {k}", "patch": "partially update the specified {k}",
                     "delete": "delete a {k}"}


@dataclass(frozen=True)
class Operation:
    """One API operation, independent of the OpenAPI version it is written in."""

    path: str
    action: str               # x-kubernetes-action: list, post, get, put, patch, delete, deletecollection
    operation_id: str
    tag: str
    gvk: Obj
    response: str             # message name of the 200 body
    body: str                 # message name of the request body, PATCH_DEF, or ""
    query: tuple[str, ...]
    group_version: str        # "api/v1" or "apis/apps/v1": the v3 document it belongs to
    scope: str                # "Namespaced", "" (cluster) or "ForAllNamespaces"
    description: str

    @property
    def method(self) -> str:
        """The HTTP method, lower case (a PathItem key)."""
        return _METHOD[self.action]


def _camel_gv(group: str, version: str) -> str:
    head = group.split(".")[0] if group else "core"
    return head[:1].upper() + head[1:] + version[:1].upper() + version[1:]


def _tag(group: str, version: str) -> str:
    return f"{group.split('.')[0] if group else 'core'}_{version}"


def operations() -> list[Operation]:
    """Every operation we document, derived from the resource catalogue."""
    out: list[Operation] = []
    for r in RESOURCES:
        out.extend(_resource_operations(r))
    return out


def _resource_operations(r: ResourceInfo) -> Iterable[Operation]:
    gv_path = f"api/{r.version}" if not r.group else f"apis/{r.group}/{r.version}"
    base = "/" + gv_path + ("/namespaces/{namespace}" if r.namespaced else "")
    scope = "Namespaced" if r.namespaced else ""
    kind_msg = ps.kind_message(r.api_version, r.kind)
    list_msg = ps.kind_message(r.api_version, r.list_kind or r.kind + "List")
    camel = _camel_gv(r.group, r.version)
    gvk = {"group": r.group, "kind": r.kind, "version": r.version}

    def op(path: str, action: str, response: str, body: str, query: tuple[str, ...],
           suffix: str = "", kind_gvk: Obj = gvk, sc: str = scope) -> Operation:
        name = r.kind if sc != "ForAllNamespaces" else r.kind + "ForAllNamespaces"
        lead = "Namespaced" if sc == "Namespaced" else ""
        oid = f"{_OP_VERB[action]}{camel}{lead}{name}{suffix}"
        what = r.kind + (" " + suffix.lower() if suffix else "")
        return Operation(path, action, oid, _tag(r.group, r.version), kind_gvk, response, body,
                         query, gv_path, sc, _MESSAGE_SINGULAR[action].format(k=what))

    coll, item = f"{base}/{r.plural}", f"{base}/{r.plural}/{{name}}"
    v = set(r.verbs)
    if "list" in v and list_msg:
        yield op(coll, "list", list_msg, "", _LIST_Q)
        if r.namespaced:
            yield op(f"/{gv_path}/{r.plural}", "list", list_msg, "", _LIST_Q, sc="ForAllNamespaces")
    if "create" in v:
        yield op(coll, "post", kind_msg, kind_msg, _WRITE_Q)
    if "deletecollection" in v:
        yield op(coll, "deletecollection", "meta.v1.Status", "meta.v1.DeleteOptions", _LIST_Q + _DELETE_Q)
    if "get" in v:
        yield op(item, "get", kind_msg, "", ())
    if "update" in v:
        yield op(item, "put", kind_msg, kind_msg, _WRITE_Q)
    if "patch" in v:
        yield op(item, "patch", kind_msg, PATCH_DEF, _WRITE_Q + ("force",))
    if "delete" in v:
        yield op(item, "delete", "meta.v1.Status", "meta.v1.DeleteOptions", _DELETE_Q)
    for sub in r.subresources:
        path = f"{item}/{sub.name}"
        if sub.name in ("status", "scale", "finalize"):
            sub_av = f"{sub.group}/{sub.version}" if sub.group else r.api_version
            sub_msg = ps.kind_message(sub_av, sub.kind or r.kind)
            sub_gvk = {"group": sub.group or r.group, "kind": sub.kind or r.kind,
                       "version": sub.version or r.version}
            suffix = sub.name.capitalize()
            if "get" in sub.verbs:
                yield op(path, "get", sub_msg, "", (), suffix, sub_gvk)
            if "update" in sub.verbs:
                yield op(path, "put", sub_msg, sub_msg, _WRITE_Q, suffix, sub_gvk)
            if "patch" in sub.verbs:
                yield op(path, "patch", sub_msg, PATCH_DEF, _WRITE_Q + ("force",), suffix, sub_gvk)
        elif sub.name in ("eviction", "binding"):
            sub_av = f"{sub.group}/{sub.version}" if sub.group else "v1"
            sub_msg = ps.kind_message(sub_av, sub.kind)
            sub_gvk = {"group": sub.group, "kind": sub.kind, "version": sub.version or "v1"}
            yield op(path, "post", sub_msg, sub_msg, _WRITE_Q, sub.name.capitalize(), sub_gvk)
        # connect subresources (log, exec, attach, portforward, proxy) are not documented


def _path_params(path: str) -> list[tuple[str, str]]:
    """(name, description) of the path's {parameters}."""
    out = []
    if "{name}" in path:
        out.append(("name", "name of the object"))
    if "{namespace}" in path:
        out.append(("namespace", "object name and auth scope, such as for teams and projects"))
    return out


# --------------------------------------------------------------------------- documents

def _query_v2(name: str) -> Obj:
    typ, doc = _QUERY[name]
    return {"uniqueItems": True, "type": typ, "description": doc, "name": name, "in": "query"}


def _path_v2(name: str, doc: str) -> Obj:
    return {"uniqueItems": True, "type": "string", "description": doc, "name": name,
            "in": "path", "required": True}


def _body_ref(defs: _Definitions, message: str) -> Obj:
    if message == PATCH_DEF:
        defs.defs.setdefault(PATCH_DEF, {"type": "object", "description":
                                         "A patch body, in the format its content type names."})
        return {"$ref": f"#/definitions/{PATCH_DEF}"}
    return defs.ref(message)


def _consumes(o: Operation) -> list[str]:
    return list(_PATCH_TYPES) if o.action == "patch" else ["*/*"]


def build_v2() -> Obj:
    """The swagger 2.0 document of everything we serve."""
    defs = _Definitions()
    paths: dict[str, Obj] = {}
    for o in operations():
        item = paths.setdefault(o.path, {"parameters": [
            *(_path_v2(n, d) for n, d in _path_params(o.path)), _query_v2("pretty")]})
        params = []
        if o.body:
            params.append({"name": "body", "in": "body", "required": True,
                           "schema": _body_ref(defs, o.body)})
        params.extend(_query_v2(q) for q in o.query)
        resp = defs.ref(o.response)
        responses = {"200": {"description": "OK", "schema": resp}}
        if o.action in ("post", "put", "patch") and not o.path.endswith(("/status", "/scale")):
            responses["201"] = {"description": "Created", "schema": resp}
        responses["401"] = {"description": "Unauthorized"}
        item[o.method] = {
            "description": o.description, "consumes": _consumes(o), "produces": list(_PRODUCES),
            "schemes": ["https"], "tags": [o.tag], "operationId": o.operation_id,
            "parameters": params, "responses": responses,
            "x-kubernetes-action": o.action, "x-kubernetes-group-version-kind": o.gvk,
        }
    for extra in ("meta.v1.Status", "meta.v1.DeleteOptions"):
        defs.ref(extra)
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": GIT_VERSION},
            "paths": paths, "definitions": dict(sorted(defs.defs.items()))}


def _v3_param(p: Obj) -> Obj:
    out = {"name": p["name"], "in": p["in"], "description": p["description"],
           "schema": {"type": p["type"], "uniqueItems": True}}
    if p.get("required"):
        out["required"] = True
    return out


def _v3_content(schema: Obj, types: Iterable[str]) -> Obj:
    return {t: {"schema": _to_v3(schema)} for t in types}


def build_v3(v2: Obj) -> dict[str, Obj]:
    """{group-version path ("api/v1", "apis/apps/v1"): its OpenAPI 3.0 document}, from v2."""
    gv_of = {o.path: o.group_version for o in operations()}
    docs: dict[str, Obj] = {}
    for path, item in v2["paths"].items():
        doc = docs.setdefault(gv_of[path], {"openapi": "3.0.0", "info": dict(v2["info"]),
                                           "paths": {}, "components": {"schemas": {}}})
        out: Obj = {"parameters": [_v3_param(p) for p in item["parameters"]]}
        for method, op in item.items():
            if method == "parameters":
                continue
            new = {k: v for k, v in op.items() if k not in ("consumes", "produces", "schemes", "parameters", "responses")}
            new["parameters"] = [_v3_param(p) for p in op["parameters"] if p["in"] != "body"]
            body = [p for p in op["parameters"] if p["in"] == "body"]
            if body:
                new["requestBody"] = {"content": _v3_content(body[0]["schema"], op["consumes"]),
                                      "required": True}
            new["responses"] = {
                code: ({"description": r["description"],
                        "content": _v3_content(r["schema"], op["produces"])} if "schema" in r
                       else {"description": r["description"]})
                for code, r in op["responses"].items()}
            out[method] = new
        doc["paths"][path] = out
    for doc in docs.values():
        _copy_reachable(doc, v2["definitions"])
    return docs


def _copy_reachable(doc: Obj, definitions: Obj) -> None:
    """Copy into the v3 document every definition its paths reach, in v3 form."""
    schemas = doc["components"]["schemas"]
    todo = _refs(doc["paths"])
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        v3 = _to_v3(definitions[name])
        special = next((k for k in _V3_SPECIAL if definition_name(k) == name), None)
        if special:
            v3 = {"description": v3.get("description", ""), **_V3_SPECIAL[special]}
        schemas[name] = v3
        todo.extend(_refs(v3))
    doc["components"]["schemas"] = dict(sorted(schemas.items()))


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            ref = n.get("$ref")
            if isinstance(ref, str):
                found.append(ref.rsplit("/", 1)[1])
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return found


# --------------------------------------------------------------------------- gnostic protobuf
# Field numbers of gnostic-models openapiv2/OpenAPIv2.proto (package openapi.v2).  Only
# what a swagger document of ours contains is written; proto3 omits empty scalars.

def _s(number: int, value: Any) -> bytes:
    return _len_field(number, str(value).encode()) if value not in (None, "") else b""


def _ss(number: int, values: Iterable[str]) -> bytes:
    return b"".join(_len_field(number, v.encode()) for v in values)


def _b(number: int, value: Any) -> bytes:
    return _key(number, VARINT) + b"\x01" if value else b""


def _i(number: int, value: Any) -> bytes:
    return _key(number, VARINT) + _varint(int(value)) if value else b""


def _d(number: int, value: Any) -> bytes:
    return _key(number, FIXED64) + struct.pack("<d", float(value)) if value is not None else b""


def _m(number: int, data: bytes) -> bytes:
    return _len_field(number, data)


def _any(value: Any) -> bytes:
    """openapi.v2.Any: the value as YAML text (JSON is YAML)."""
    return _s(2, orjson.dumps(value).decode())


def _vendor(number: int, obj: Obj) -> bytes:
    """NamedAny entries for the x- keys of obj."""
    return b"".join(_m(number, _s(1, k) + _m(2, _any(v))) for k, v in obj.items() if k.startswith("x-"))


def _schema_pb(s: Obj) -> bytes:
    out = [_s(1, s.get("$ref")), _s(2, s.get("format")), _s(3, s.get("title")),
           _s(4, s.get("description"))]
    if "default" in s:
        out.append(_m(5, _any(s["default"])))
    out += [_d(7, s.get("maximum")), _d(9, s.get("minimum")), _i(11, s.get("maxLength")),
            _i(12, s.get("minLength")), _s(13, s.get("pattern")), _i(14, s.get("maxItems")),
            _i(15, s.get("minItems")), _b(16, s.get("uniqueItems")), _ss(19, s.get("required", ()))]
    out += [_m(20, _any(e)) for e in s.get("enum", ())]
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        out.append(_m(21, _m(1, _schema_pb(ap))))
    elif isinstance(ap, bool):
        out.append(_m(21, _key(2, VARINT) + (b"\x01" if ap else b"\x00")))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out.append(_m(22, _ss(1, types)))
    if "items" in s:
        items = s["items"] if isinstance(s["items"], list) else [s["items"]]
        out.append(_m(23, b"".join(_m(1, _schema_pb(i)) for i in items)))
    out += [_m(24, _schema_pb(a)) for a in s.get("allOf", ())]
    if "properties" in s:  # present even when empty: it makes the schema a struct
        out.append(_m(25, b"".join(_m(1, _s(1, k) + _m(2, _schema_pb(v)))
                                   for k, v in s["properties"].items())))
    out += [_b(27, s.get("readOnly")), _vendor(31, s)]
    return b"".join(out)


def _parameter_pb(p: Obj) -> bytes:
    """A ParametersItem: a $ref, a body parameter or a non-body (query/path/header) one."""
    if "$ref" in p:
        return _m(2, _s(1, p["$ref"]))
    if p["in"] == "body":
        body = (_s(1, p.get("description")) + _s(2, p["name"]) + _s(3, "body")
                + _b(4, p.get("required")) + _m(5, _schema_pb(p["schema"])) + _vendor(6, p))
        return _m(1, _m(1, body))
    head = _b(1, p.get("required")) + _s(2, p["in"]) + _s(3, p.get("description")) + _s(4, p["name"])
    if p["in"] in ("query", "formData"):  # Query/FormDataParameterSubSchema
        sub = (head + _b(5, p.get("allowEmptyValue")) + _s(6, p.get("type")) + _s(7, p.get("format"))
               + _b(20, p.get("uniqueItems")) + _vendor(23, p))
    else:                                 # Path/HeaderParameterSubSchema
        sub = (head + _s(5, p.get("type")) + _s(6, p.get("format"))
               + _b(19, p.get("uniqueItems")) + _vendor(22, p))
    which = {"header": 1, "formData": 2, "query": 3, "path": 4}[p["in"]]
    return _m(1, _m(2, _m(which, sub)))


def _operation_pb(op: Obj) -> bytes:
    responses = b"".join(
        _m(1, _s(1, code) + _m(2, _m(1, _s(1, r.get("description"))
                                     + (_m(2, _m(1, _schema_pb(r["schema"]))) if "schema" in r else b""))))
        for code, r in op.get("responses", {}).items())
    return b"".join([
        _ss(1, op.get("tags", ())), _s(2, op.get("summary")), _s(3, op.get("description")),
        _s(5, op.get("operationId")), _ss(6, op.get("produces", ())), _ss(7, op.get("consumes", ())),
        *(_m(8, _parameter_pb(p)) for p in op.get("parameters", ())),
        _m(9, responses), _ss(10, op.get("schemes", ())), _b(11, op.get("deprecated")),
        _vendor(13, op)])


_PATH_ITEM_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item_pb(item: Obj) -> bytes:
    out = [_m(n, _operation_pb(item[m])) for m, n in _PATH_ITEM_FIELDS.items() if m in item]
    out += [_m(9, _parameter_pb(p)) for p in item.get("parameters", ())]
    return b"".join(out) + _vendor(10, item)


def to_gnostic(doc: Obj) -> bytes:
    """Encode a swagger 2.0 JSON document as a gnostic ``openapi.v2.Document`` message."""
    info = doc.get("info", {})
    paths = b"".join(_m(2, _s(1, p) + _m(2, _path_item_pb(i))) for p, i in doc.get("paths", {}).items())
    definitions = b"".join(_m(1, _s(1, n) + _m(2, _schema_pb(s)))
                           for n, s in doc.get("definitions", {}).items())
    return b"".join([
        _s(1, doc.get("swagger")), _m(2, _s(1, info.get("title")) + _s(2, info.get("version"))),
        _s(3, doc.get("host")), _s(4, doc.get("basePath")), _ss(5, doc.get("schemes", ())),
        _ss(6, doc.get("consumes", ())), _ss(7, doc.get("produces", ())),
        _m(8, paths), _m(9, definitions), _vendor(16, doc)])


# --------------------------------------------------------------------------- serving

@dataclass(frozen=True)
class Blob:
    """A served body with its strong ETag (unquoted, as in ``?hash=``)."""

    body: bytes
    etag: str


def _blob(body: bytes) -> Blob:
    return Blob(body, hashlib.sha512(body).hexdigest().upper())


@dataclass(frozen=True)
class Documents:
    """Everything /openapi serves, built once."""

    v2_json: Blob
    v2_proto: Blob
    v3: dict[str, Blob]       # "apis/apps/v1" -> document
    v3_root: Blob
    built: float


@functools.cache
def documents() -> Documents:
    """Build (once) and return the served OpenAPI documents."""
    v2 = build_v2()
    v3 = {gv: _blob(orjson.dumps(d)) for gv, d in build_v3(v2).items()}
    root = {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={b.etag}"}
                      for gv, b in sorted(v3.items())}}
    return Documents(_blob(orjson.dumps(v2)), _blob(to_gnostic(v2)), v3,
                     _blob(orjson.dumps(root)), time.time())


def served_group_versions() -> list[str]:
    """The v3 document names, "api/v1" and "apis/<group>/<version>"."""
    return [f"apis/{g}/{v}" if g else f"api/{v}" for g, vs in group_versions().items() for v in vs]


def _accepts(header: str) -> list[str]:
    """Media ranges of an Accept header, best first (q=0 dropped; '@' allowed in subtypes)."""
    ranked = []
    for i, part in enumerate(header.split(",")):
        media, *params = [x.strip() for x in part.split(";")]
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranked.append((-q, i, media.lower()))
    return [m for _, _, m in sorted(ranked)]


def _choose(header: str, offers: list[tuple[str, str]]) -> str | None:
    """The first offer's tag (offers: (media type, tag)) that the Accept header allows."""
    for media in _accepts(header or "*/*"):
        kind, _, sub = media.partition("/")
        for offer, tag in offers:
            okind, _, osub = offer.partition("/")
            if kind in ("*", okind) and sub in ("*", osub):
                return tag
    return None


def _not_modified(request: web.Request, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    tags = {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}
    return etag in tags or "*" in tags


def _serve(request: web.Request, blob: Blob, content_type: str, built: float,
           extra: dict[str, str] | None = None) -> web.Response:
    headers = {"ETag": f'"{blob.etag}"', "Vary": "Accept",
               "Last-Modified": email.utils.formatdate(built, usegmt=True), **(extra or {})}
    if _not_modified(request, blob.etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    return web.Response(body=blob.body, headers=headers)


async def _documents() -> Documents:
    if documents.cache_info().currsize:
        return documents()
    return await asyncio.get_running_loop().run_in_executor(None, documents)


async def handle(request: web.Request) -> web.StreamResponse:
    """Serve /openapi/v2, /openapi/v3 and /openapi/v3/<group-version>."""
    path = request.path.rstrip("/")
    if not path.startswith("/openapi/v"):
        raise errors.no_such_path()  # /openapi, and the legacy /swagger-2.0.0.pb-v1
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    docs = await _documents()
    if path == "/openapi/v2":
        tag = _choose(request.headers.get("Accept", ""), [
            ("application/json", "json"), (V2_PROTO_REQUESTED, "proto"), (V2_PROTO, "proto")])
        if tag is None:
            raise errors.not_acceptable(["application/json", V2_PROTO])
        if tag == "proto":
            return _serve(request, docs.v2_proto, V2_PROTO, docs.built)
        return _serve(request, docs.v2_json, "application/json", docs.built)
    if path == "/openapi/v3":
        return _serve(request, docs.v3_root, "application/json", docs.built)
    gv = path.removeprefix("/openapi/v3/")
    blob = docs.v3.get(gv) if path.startswith("/openapi/v3/") else None
    if blob is None:
        raise errors.no_such_path()
    if _choose(request.headers.get("Accept", ""), [("application/json", "json")]) is None:
        raise errors.not_acceptable(["application/json"])
    wanted = request.query.get("hash")
    if wanted is None:
        return _serve(request, blob, "application/json", docs.built)
    if wanted != blob.etag:  # a stale hash: point at the current document
        raise web.HTTPMovedPermanently(f"/openapi/v3/{gv}?hash={blob.etag}")
    return _serve(request, blob, "application/json", docs.built, {
        "Cache-Control": "public, immutable",
        "Expires": email.utils.formatdate(time.time() + 365 * 86400, usegmt=True)})
