"""Shared helpers of the CRD tests: CRD manifests and waiting for their resources."""
from __future__ import annotations

import json
import os
from typing import Any

from conftest import Server

Obj = dict[str, Any]

CRONTAB_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "properties": {
            "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
            "image": {"type": "string", "description": "The container image the job runs."},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
        }},
        "status": {"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "labelSelector": {"type": "string"},
        }},
    },
}


def unique_group(prefix: str = "crd") -> str:
    """A fresh API group, so tests sharing a server never share names."""
    return f"{prefix}{os.urandom(3).hex()}.example.com"


def crd(group: str, plural: str = "crontabs", kind: str = "CronTab", *, scope: str = "Namespaced",
        versions: list[Obj] | None = None, short_names: tuple[str, ...] = (), categories: tuple[str, ...] = ()) -> Obj:
    """A CustomResourceDefinition manifest (one served storage version v1 by default)."""
    names: Obj = {"plural": plural, "singular": kind.lower(), "kind": kind}
    if short_names:
        names["shortNames"] = list(short_names)
    if categories:
        names["categories"] = list(categories)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope, "names": names,
                     "versions": versions or [version("v1")]}}


def version(name: str, *, served: bool = True, storage: bool = True, schema: Obj | None = None,
            status: bool = False, scale: bool = False, columns: list[Obj] | None = None) -> Obj:
    """One entry of spec.versions."""
    v: Obj = {"name": name, "served": served, "storage": storage,
              "schema": {"openAPIV3Schema": schema if schema is not None else CRONTAB_SCHEMA}}
    subs: Obj = {}
    if status:
        subs["status"] = {}
    if scale:
        subs["scale"] = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                         "labelSelectorPath": ".status.labelSelector"}
    if subs:
        v["subresources"] = subs
    if columns is not None:
        v["additionalPrinterColumns"] = columns
    return v


def cr(group: str, name: str, kind: str = "CronTab", version_: str = "v1", **fields: Any) -> Obj:
    """A custom resource manifest."""
    return {"apiVersion": f"{group}/{version_}", "kind": kind, "metadata": {"name": name}, **fields}


def apply(srv: Server, obj: Obj, *args: str, check: bool = True):
    """kubectl apply -f - of one object (JSON)."""
    return srv.kubectl("apply", "-f", "-", *args, input=json.dumps(obj), check=check)


def create_crd(srv: Server, manifest: Obj) -> Obj:
    """Create a CRD and return it once it is Established and its resources are in discovery."""
    srv.kubectl("create", "-f", "-", input=json.dumps(manifest), check=True)
    name = manifest["metadata"]["name"]

    def established() -> Obj | None:
        got = srv.kjson("get", "crd", name)
        conds = {c["type"]: c["status"] for c in got.get("status", {}).get("conditions", [])}
        return got if conds.get("Established") == "True" else None
    return srv.wait_for(established, what=f"{name} established")
