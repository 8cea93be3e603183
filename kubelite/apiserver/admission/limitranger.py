"""LimitRanger admission: default resources into new pods' containers and refuse pods and
claims outside their namespace's LimitRanges.

As upstream's LimitRanger plugin: for a new pod, each Container item's ``default`` (limits)
and ``defaultRequest`` (requests) fill what a container leaves unset (noted in the
``kubernetes.io/limit-ranger`` annotation); then min, max and maxLimitRequestRatio are
checked per container (Container items) and for the pod's totals (Pod items), and a
PersistentVolumeClaim's storage request and limit against PersistentVolumeClaim items.
Pods are only admitted on create (their resources cannot change otherwise); claims on
create and update.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from kubelite.api import meta
from kubelite.api import quota as q
from kubelite.api.resources import ResourceInfo
from kubelite.apiserver.admission.status import forbidden
from kubelite.apiserver.lookups import Lookups

Obj = dict[str, Any]
ANNOTATION = "kubernetes.io/limit-ranger"


class LimitRanger:
    """The mutating hook (registry.admission) for LimitRanges."""

    def __init__(self, lookups: Lookups):
        self.lookups = lookups

    async def __call__(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        """Default and check a new pod, or check a claim."""
        if info.group:
            return
        if info.kind == "Pod" and old is None:
            pass
        elif info.kind != "PersistentVolumeClaim":
            return
        ns = meta.namespace(obj)
        if not ns:
            return
        ranges = await self.lookups.limit_ranges_of(ns)
        if not ranges:
            return
        items = [item for lr in sorted(ranges, key=meta.name)
                 for item in (lr.get("spec") or {}).get("limits") or [] if isinstance(item, dict)]
        if info.kind == "Pod":
            _default_pod(obj, items)
            errs = check_pod(obj, items)
        else:
            errs = check_claim(obj, items)
        if errs:
            raise forbidden(info, meta.name(obj), errs[0] if len(errs) == 1 else f"[{', '.join(errs)}]")


def _requests_from_limits(res: Obj) -> None:
    """What the API's defaulting does anyway: an unset request equals its limit."""
    limits = res.get("limits") or {}
    if limits:
        requests = res.setdefault("requests", {})
        for k, v in limits.items():
            requests.setdefault(k, v)


def _default_pod(pod: Obj, items: list[Obj]) -> None:
    """mergePodResourceRequirements: fill unset container limits and requests."""
    default: dict[str, Any] = {}
    default_req: dict[str, Any] = {}
    for item in items:
        if item.get("type") == "Container":
            default.update(item.get("default") or {})
            default_req.update(item.get("defaultRequest") or {})
    spec = pod.setdefault("spec", {})
    notes: list[str] = []
    for field, label in (("containers", "container"), ("initContainers", "init container")):
        for c in spec.get(field) or []:
            res = c.get("resources")
            if not isinstance(res, dict):
                res = c["resources"] = {}
            _requests_from_limits(res)
            set_limits, set_requests = [], []
            for k, v in default.items():
                lim = res.setdefault("limits", {})
                if k not in lim:
                    lim[k] = v
                    set_limits.append(k)
            for k, v in default_req.items():
                req = res.setdefault("requests", {})
                if k not in req:
                    req[k] = v
                    set_requests.append(k)
            for key in ("limits", "requests"):
                if key in res and not res[key]:
                    del res[key]
            if set_requests:
                notes.append(f"{', '.join(sorted(set_requests))} request for {label} {c.get('name', '')}")
            if set_limits:
                notes.append(f"{', '.join(sorted(set_limits))} limit for {label} {c.get('name', '')}")
    if notes:
        md = pod.setdefault("metadata", {})
        md["annotations"] = {**(md.get("annotations") or {}), ANNOTATION: f"LimitRanger plugin set: {'; '.join(notes)}"}


def _min(kind: str, r: str, enforced: str, req: q.Qty | None, lim: q.Qty | None) -> str:
    e = q.parse(enforced)
    if req is None:
        return f"minimum {r} usage per {kind} is {e}.  No request is specified"
    if req.value < e.value:
        return f"minimum {r} usage per {kind} is {e}, but request is {req}"
    if lim is not None and lim.value < e.value:
        return f"minimum {r} usage per {kind} is {e}, but limit is {lim}"
    return ""


def _max(kind: str, r: str, enforced: str, req: q.Qty | None, lim: q.Qty | None) -> str:
    e = q.parse(enforced)
    if lim is None:
        return f"maximum {r} usage per {kind} is {e}.  No limit is specified"
    if lim.value > e.value:
        return f"maximum {r} usage per {kind} is {e}, but limit is {lim}"
    if req is not None and req.value > e.value:
        return f"maximum {r} usage per {kind} is {e}, but request is {req}"
    return ""


def _ratio(kind: str, r: str, enforced: str, req: q.Qty | None, lim: q.Qty | None) -> str:
    e = q.parse(enforced)
    if req is None or req.value == 0:
        return f"{r} max limit to request ratio per {kind} is {e}, but no request is specified or request is 0"
    if lim is None or lim.value == 0:
        return f"{r} max limit to request ratio per {kind} is {e}, but no limit is specified or limit is 0"
    observed = Fraction(lim.value) / Fraction(req.value)
    if observed > e.value:
        return f"{r} max limit to request ratio per {kind} is {e}, but provided ratio is {float(observed):f}"
    return ""


def _check(kind: str, item: Obj, requests: q.ResourceList, limits: q.ResourceList) -> list[str]:
    errs: list[str] = []
    for field, fn in (("min", _min), ("max", _max), ("maxLimitRequestRatio", _ratio)):
        for r, enforced in sorted((item.get(field) or {}).items()):
            try:
                msg = fn(kind, r, enforced, requests.get(r), limits.get(r))
            except ValueError:
                continue
            if msg:
                errs.append(msg)
    return errs


def check_pod(pod: Obj, items: list[Obj]) -> list[str]:
    """PodValidateLimitFunc: Container items per container, Pod items on the pod's totals."""
    spec = pod.get("spec") or {}
    errs: list[str] = []
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    for item in items:
        typ = item.get("type")
        if typ == "Container":
            for c in containers:
                res = c.get("resources") or {}
                errs += _check("Container", item, q.to_list(res.get("requests")), q.to_list(res.get("limits")))
        elif typ == "Pod":
            requests: q.ResourceList = {}
            limits: q.ResourceList = {}
            for c in spec.get("containers") or []:
                res = c.get("resources") or {}
                requests = q.add(requests, q.to_list(res.get("requests")))
                limits = q.add(limits, q.to_list(res.get("limits")))
            for c in spec.get("initContainers") or []:
                res = c.get("resources") or {}
                for total, part in ((requests, q.to_list(res.get("requests"))), (limits, q.to_list(res.get("limits")))):
                    for k, v in part.items():
                        if k not in total or v.value > total[k].value:
                            total[k] = v
            errs += _check("Pod", item, requests, limits)
    return errs


def check_claim(pvc: Obj, items: list[Obj]) -> list[str]:
    """PersistentVolumeClaimValidateLimitFunc: min and max on the claim's storage."""
    res = (pvc.get("spec") or {}).get("resources") or {}
    requests, limits = q.to_list(res.get("requests")), q.to_list(res.get("limits"))
    errs: list[str] = []
    for item in items:
        if item.get("type") != "PersistentVolumeClaim":
            continue
        for r, enforced in sorted((item.get("min") or {}).items()):
            e = q.parse(enforced)
            req = requests.get(r)
            if req is None:
                errs.append(f"minimum {r} usage per PersistentVolumeClaim is {e}.  No request is specified")
            elif req.value < e.value:
                errs.append(f"minimum {r} usage per PersistentVolumeClaim is {e}, but request is {req}")
        for r, enforced in sorted((item.get("max") or {}).items()):
            e = q.parse(enforced)
            req = requests.get(r)
            if req is None:
                errs.append(f"maximum {r} usage per PersistentVolumeClaim is {e}.  No request is specified")
            elif req.value > e.value:
                errs.append(f"maximum {r} usage per PersistentVolumeClaim is {e}, but request is {req}")
            lim = limits.get(r)
            if lim is not None and lim.value > e.value:
                errs.append(f"maximum {r} usage per PersistentVolumeClaim is {e}, but limit is {lim}")
    return errs
