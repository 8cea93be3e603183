"""Helpers that give plain-dict Kubernetes objects meaning (ObjectMeta, owners, times)."""
from __future__ import annotations

import datetime as _dt
import random
import uuid
from typing import Any

Obj = dict[str, Any]

# Upstream's utilrand alphabet: no vowels, no confusable characters.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def now() -> _dt.datetime:
    """The current time in UTC."""
    return _dt.datetime.now(_dt.UTC)


def rfc3339(t: _dt.datetime | None = None) -> str:
    """metav1.Time as JSON: seconds precision with a Z."""
    t = t or now()
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(t: _dt.datetime | None = None) -> str:
    """metav1.MicroTime as JSON (leases, events.k8s.io)."""
    t = t or now()
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str | None) -> _dt.datetime | None:
    """Parse an RFC3339 timestamp (seconds or fractional) into an aware datetime."""
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    if "." in s:  # Python only takes up to 6 fractional digits.
        head, rest = s.split(".", 1)
        frac = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            frac += rest[i]
            i += 1
        s = f"{head}.{(frac + '000000')[:6]}{rest[i:]}"
    return _dt.datetime.fromisoformat(s)


def rand_suffix(n: int = 5) -> str:
    """Random name suffix as upstream's utilrand.String."""
    return "".join(random.choice(_ALPHANUMS) for _ in range(n))


def new_uid() -> str:
    """A new metadata.uid."""
    return str(uuid.uuid4())


def meta(obj: Obj) -> Obj:
    """obj.metadata, created if absent."""
    return obj.setdefault("metadata", {})


def name(obj: Obj) -> str:
    """metadata.name."""
    return obj.get("metadata", {}).get("name", "")


def namespace(obj: Obj) -> str:
    """metadata.namespace ('' for cluster-scoped)."""
    return obj.get("metadata", {}).get("namespace", "")


def key(obj: Obj) -> str:
    """namespace/name, as client-go's MetaNamespaceKeyFunc."""
    ns = namespace(obj)
    return f"{ns}/{name(obj)}" if ns else name(obj)


def labels(obj: Obj) -> dict[str, str]:
    """metadata.labels (never None)."""
    return obj.get("metadata", {}).get("labels") or {}


def annotations_of(obj: Obj) -> dict[str, str]:
    """metadata.annotations (never None)."""
    return obj.get("metadata", {}).get("annotations") or {}


def uid(obj: Obj) -> str:
    """metadata.uid."""
    return obj.get("metadata", {}).get("uid", "")


def resource_version(obj: Obj) -> str:
    """metadata.resourceVersion."""
    return obj.get("metadata", {}).get("resourceVersion", "")


def is_deleting(obj: Obj) -> bool:
    """True once metadata.deletionTimestamp is set."""
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with controller: true, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    """An ownerReference that marks ``owner`` as the controller (blockOwnerDeletion too)."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }
