"""What a request asks to do, in the terms authorizers decide on (upstream's RequestInfo
and authorizer.Attributes).

A resource request names a verb (get, list, watch, create, update, patch, delete,
deletecollection, or a special verb such as impersonate), an API group, a resource, maybe
a subresource, a namespace and an object name.  Everything else — ``/api``, ``/apis/apps``,
``/healthz``, ``/openapi/v3`` — is a non-resource request: a path and the HTTP method in
lower case.  The rules are upstream's:

* ``/api/v1`` and ``/apis/<group>/<version>`` without a resource are non-resource paths;
* ``/api/v1/namespaces/<ns>`` is the namespace object, with namespace ``<ns>`` (so a
  RoleBinding in a namespace may grant reading that namespace);
* GET without a name is ``list`` (``watch`` with ``?watch=true`` or under ``/watch/``);
  DELETE without a name is ``deletecollection``;
* a list or watch with the field selector ``metadata.name=<x>`` names object ``<x>``, so
  rules restricted by ``resourceNames`` can allow it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubelite.api.errors import StatusError
from kubelite.api.selectors import parse_field_selector
from kubelite.apiserver.authn import User

_METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class Attributes:
    """One authorization question: may ``user`` do ``verb`` on this resource or path?"""

    user: User
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    field_selector: str = ""
    label_selector: str = ""

    @property
    def resource_and_sub(self) -> str:
        """``pods`` or ``pods/log``, as RBAC rules name them."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def exact_field(selector: str, field: str) -> str | None:
    """The value a field selector requires ``field`` to equal exactly, if it does."""
    if not selector:
        return None
    try:
        terms = parse_field_selector(selector)
    except StatusError:
        return None  # a malformed selector authorizes nothing; the handler answers 400
    for f, op, value in terms:
        if f == field and op == "=":
            return value
    return None


def _is_true(v: str | None) -> bool:
    return (v or "").lower() in ("true", "1")


def request_attributes(user: User, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes of an HTTP request (path already URL-decoded)."""
    parts = [p for p in path.split("/") if p]
    verb = _METHOD_VERBS.get(method.upper())
    rest: list[str]
    if verb is not None and len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    elif verb is not None and len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        rest = []
    if verb is None or not rest:
        return Attributes(user, method.lower(), False, path=path or "/")
    if rest[0] == "watch":  # the deprecated /watch/ prefix
        verb, rest = "watch", rest[1:]
        if not rest:
            return Attributes(user, method.lower(), False, path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if _is_true(query.get("watch")) else "list"
    elif not name and verb == "delete":
        verb = "deletecollection"
    fields = query.get("fieldSelector", "")
    if verb in ("list", "watch") and not name:
        name = exact_field(fields, "metadata.name") or ""
    return Attributes(user, verb, True, path=path, namespace=namespace, api_group=group, api_version=version,
                      resource=resource, subresource=sub, name=name, field_selector=fields,
                      label_selector=query.get("labelSelector", ""))


def resource_attributes(user: User, spec: Mapping[str, object]) -> Attributes:
    """Attributes from an authorization.k8s.io ResourceAttributes object."""
    def s(key: str) -> str:
        v = spec.get(key)
        return v if isinstance(v, str) else ""
    fsel = spec.get("fieldSelector")
    lsel = spec.get("labelSelector")
    return Attributes(user, s("verb"), True, namespace=s("namespace"), api_group=s("group"),
                      api_version=s("version"), resource=s("resource"), subresource=s("subresource"),
                      name=s("name"),
                      field_selector=str(fsel.get("rawSelector") or "") if isinstance(fsel, dict) else "",
                      label_selector=str(lsel.get("rawSelector") or "") if isinstance(lsel, dict) else "")


def non_resource_attributes(user: User, spec: Mapping[str, object]) -> Attributes:
    """Attributes from an authorization.k8s.io NonResourceAttributes object."""
    path, verb = spec.get("path"), spec.get("verb")
    return Attributes(user, verb if isinstance(verb, str) else "", False, path=path if isinstance(path, str) else "")
