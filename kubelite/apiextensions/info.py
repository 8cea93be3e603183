"""Catalogue entries for custom resources, built from CustomResourceDefinitions.

A CRD serves one resource per served version; each becomes a ``CustomResourceInfo``
(a ``ResourceInfo`` that also carries the version's schema, printer columns and scale
paths).  Every version is stored once, in the storage version's form: the entry names
that apiVersion as its ``storage_api_version`` and ``api.conversion`` rewrites the
apiVersion on the way in and out (upstream's ``None`` conversion strategy), or the CRD's
conversion webhook converts (``Webhook``, ``apiserver/webhooks/conversion.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.api.resources import ALL_VERBS, STATUS_VERBS, ResourceInfo, Subresource

Obj = dict[str, Any]

GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


@dataclass(frozen=True)
class CustomResourceInfo(ResourceInfo):
    """One served version of a custom resource."""

    crd_name: str = ""
    singular_name: str = ""
    # The version's openAPIV3Schema (None: the CRD gives none; everything is kept).
    schema: Obj | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[Obj, ...] = field(default=(), compare=False, hash=False)
    scale: Obj | None = field(default=None, compare=False, hash=False)
    # Upstream keeps serving reads of a terminating CRD's objects but refuses creates.
    terminating: bool = False
    # The CRD's spec.conversion (strategy None or Webhook, and the webhook).
    conversion: Obj | None = field(default=None, compare=False, hash=False)

    @property
    def singular(self) -> str:
        """Discovery's singularResource: the CRD's own spec.names.singular."""
        return self.singular_name or self.kind.lower()


def storage_version(crd: Obj) -> str:
    """The name of the version marked ``storage: true`` ("" when none is)."""
    for v in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(v, dict) and v.get("storage"):
            return str(v.get("name") or "")
    return ""


def condition(crd: Obj, ctype: str) -> Obj | None:
    """The CRD status condition of that type, if any."""
    for c in (crd.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def is_established(crd: Obj) -> bool:
    """Whether the CRD's Established condition is True."""
    c = condition(crd, "Established")
    return bool(c and c.get("status") == "True")


def infos_from_crd(crd: Obj) -> list[CustomResourceInfo]:
    """The catalogue entries an established CRD serves (one per served version)."""
    if not is_established(crd):
        return []
    spec = crd.get("spec") or {}
    names = (crd.get("status") or {}).get("acceptedNames") or spec.get("names") or {}
    group = str(spec.get("group") or "")
    storage = storage_version(crd)
    terminating = bool((crd.get("metadata") or {}).get("deletionTimestamp"))
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served"):
            continue
        subs = v.get("subresources") or {}
        subresources: list[Subresource] = []
        if "scale" in subs:
            subresources.append(Subresource("scale", STATUS_VERBS, "autoscaling", "v1", "Scale"))
        if "status" in subs:
            subresources.append(Subresource("status", STATUS_VERBS))
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(CustomResourceInfo(
            group, str(v["name"]), str(names.get("kind") or ""), str(names.get("plural") or ""),
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            verbs=ALL_VERBS, subresources=tuple(subresources), list_kind=str(names.get("listKind") or ""),
            has_status="status" in subs, storage_api_version=f"{group}/{storage}",
            crd_name=str((crd.get("metadata") or {}).get("name") or ""),
            singular_name=str(names.get("singular") or ""), schema=schema if isinstance(schema, dict) else None,
            printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
            scale=subs.get("scale") if isinstance(subs.get("scale"), dict) else None,
            terminating=terminating,
            conversion=spec.get("conversion") if isinstance(spec.get("conversion"), dict) else None))
    return out
