"""The API operations we document, derived from the resource catalogue.

One ``Operation`` per (path, HTTP method): list, create, deletecollection, get, replace,
patch and delete of each resource, plus the status, scale, finalize, binding, eviction and
token subresources.  Operation ids, tags and descriptions follow upstream's naming so kubectl
finds the PATCH operation of a kind (and its ``fieldValidation`` parameter).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubelite.api import protoschema as ps
from kubelite.api.resources import ResourceInfo, served
from kubelite.apiextensions import openapi as custom_openapi
from kubelite.apiserver.openapi.schema import PATCH_DEF

Obj = dict[str, Any]


QUERY: dict[str, tuple[str, str]] = {
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
PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json", "application/strategic-merge-patch+json")
PRODUCES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
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
    for r in served():
        out.extend(_resource_operations(r))
    return out


def _kind_message(api_version: str, kind: str) -> str:
    """The protoschema message of a served kind (every served kind must have one)."""
    message = ps.kind_message(api_version, kind)
    if message is None:
        raise KeyError(f"no protoschema message for {api_version}, Kind={kind}")
    return message


def _resource_operations(r: ResourceInfo) -> Iterable[Operation]:
    gv_path = f"api/{r.version}" if not r.group else f"apis/{r.group}/{r.version}"
    base = "/" + gv_path + ("/namespaces/{namespace}" if r.namespaced else "")
    scope = "Namespaced" if r.namespaced else ""
    list_msg: str | None
    if custom_openapi.handles(r):
        kind_msg, list_msg = custom_openapi.message_names(r)
    else:
        kind_msg = _kind_message(r.api_version, r.kind)
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
            sub_msg = kind_msg if not sub.kind else _kind_message(sub_av, sub.kind)
            sub_gvk = {"group": sub.group or r.group, "kind": sub.kind or r.kind,
                       "version": sub.version or r.version}
            suffix = sub.name.capitalize()
            if "get" in sub.verbs:
                yield op(path, "get", sub_msg, "", (), suffix, sub_gvk)
            if "update" in sub.verbs:
                yield op(path, "put", sub_msg, sub_msg, _WRITE_Q, suffix, sub_gvk)
            if "patch" in sub.verbs:
                yield op(path, "patch", sub_msg, PATCH_DEF, _WRITE_Q + ("force",), suffix, sub_gvk)
        elif sub.name in ("eviction", "binding", "token"):
            sub_av = f"{sub.group}/{sub.version}" if sub.group else "v1"
            sub_msg = _kind_message(sub_av, sub.kind)
            sub_gvk = {"group": sub.group, "kind": sub.kind, "version": sub.version or "v1"}
            yield op(path, "post", sub_msg, sub_msg, _WRITE_Q, sub.name.capitalize(), sub_gvk)
        # connect subresources (log, exec, attach, portforward, proxy) are not documented


def path_params(path: str) -> list[tuple[str, str]]:
    """(name, description) of the path's {parameters}."""
    out = []
    if "{name}" in path:
        out.append(("name", "name of the object"))
    if "{namespace}" in path:
        out.append(("namespace", "object name and auth scope, such as for teams and projects"))
    return out
