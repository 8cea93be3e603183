"""The ingress controller inside ``kubelite server``: its IngressClass, identity and rights.

At start the server makes sure the IngressClass ``kubelite`` exists (controller
``kubelite.dev/ingress``, annotated as the default class), as k3s installs Traefik's
class; a class the user changed is kept as it is.  The controller is an API client with
its own identity, ``kubelite:ingress``, bound to a ClusterRole with the rights k3s
gives Traefik: read Services, EndpointSlices, Secrets, Ingresses and IngressClasses,
and write the status of Ingresses.
"""
from __future__ import annotations

import logging
from typing import Any

from kubelite.api import errors
from kubelite.api.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, INGRESSCLASSES, ResourceInfo
from kubelite.api.validation_ingress import DEFAULT_CLASS_ANNOTATION
from kubelite.apiserver.registry import Registry
from kubelite.ingress.controller import CLASS_NAME, CONTROLLER_NAME

Obj = dict[str, Any]
log = logging.getLogger("kubelite.ingress")

USER = "kubelite:ingress"
ROLE = "kubelite:ingress-controller"
_BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def class_object() -> Obj:
    """The IngressClass of the built-in controller, marked as the default class."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": CLASS_NAME, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                         "labels": {"app.kubernetes.io/managed-by": "kubelite"}},
            "spec": {"controller": CONTROLLER_NAME}}


def rbac_objects() -> list[tuple[ResourceInfo, Obj]]:
    """The controller's ClusterRole and its binding to the controller's identity."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": ROLE, "labels": dict(_BOOTSTRAP)},
            "rules": [{"apiGroups": [""], "resources": ["secrets", "services"], "verbs": ["get", "list", "watch"]},
                      {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses", "ingresses"],
                       "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"],
                       "verbs": ["update"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": ROLE, "labels": dict(_BOOTSTRAP)},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE},
               "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": USER}]}
    return [(CLUSTERROLES, role), (CLUSTERROLEBINDINGS, binding)]


async def ensure_class(reg: Registry) -> None:
    """Create the controller's RBAC and its IngressClass unless they exist."""
    for info, obj in [*rbac_objects(), (INGRESSCLASSES, class_object())]:
        try:
            await reg.get(info, "", obj["metadata"]["name"])
        except errors.NotFound:
            try:
                await reg.create(info, "", obj)
            except errors.AlreadyExists:
                pass
