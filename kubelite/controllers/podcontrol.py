"""Pods as controllers see them: readiness, ranking for deletion, create/delete, claims.

- ``PodControl`` creates a pod from a template (generateName ``<owner>-``, the owner's
  controllerRef) and records SuccessfulCreate / FailedCreate / SuccessfulDelete events
  with upstream's wording.
- ``rank_for_deletion`` orders pods the way upstream's ActivePodsWithRanks does, most
  deletable first: unscheduled, then pending, not ready, cheaper deletion-cost, more
  siblings on the node, ready for less time (logarithmic buckets), more restarts, newer.
- ``claim`` is the ControllerRefManager: adopt orphans that match the selector, release
  owned objects that no longer match, ignore objects another controller owns.
"""
from __future__ import annotations

import copy
import datetime as _dt
import functools
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import PODS
from kubelite.api.selectors import selector_from_dict
from kubelite.client.errors import Invalid, NotFound, StatusError
from kubelite.client.protocols import APIClient, Recorder

Obj = dict[str, Any]

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}

def selector_matcher(selector: Obj | None) -> Callable[[dict[str, str] | None], bool]:
    """metav1.LabelSelectorAsSelector(selector).Matches: None matches nothing."""
    return selector_from_dict(selector).matches


def selector_is_empty(selector: Obj | None) -> bool:
    """True for ``{}`` (which would select everything)."""
    return selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions")


# --- pod state -------------------------------------------------------------------------

def _ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    """The Ready condition is True."""
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def pod_ready_time(pod: Obj) -> _dt.datetime | None:
    """When the pod last became ready (None if it is not ready)."""
    if not is_pod_ready(pod):
        return None
    return meta.parse_time(_ready_condition(pod).get("lastTransitionTime"))  # type: ignore[union-attr]


def is_pod_available(pod: Obj, min_ready_seconds: int, now: _dt.datetime) -> bool:
    """Ready for at least minReadySeconds."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds == 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + _dt.timedelta(seconds=min_ready_seconds) < now


def is_pod_active(pod: Obj) -> bool:
    """Not Succeeded, not Failed, not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not meta.is_deleting(pod)


def filter_active_pods(pods: Iterable[Obj]) -> list[Obj]:
    """The pods that count towards a ReplicaSet's size."""
    return [p for p in pods if is_pod_active(p)]


def pod_key(pod: Obj) -> str:
    """namespace/name."""
    return f"{meta.namespace(pod)}/{meta.name(pod)}"


def _max_restarts(pod: Obj) -> int:
    return max((int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []),
               default=0)


def _deletion_cost(pod: Obj) -> int:
    try:
        return int(meta.annotations_of(pod).get(DELETION_COST, "0"))
    except ValueError:
        return 0


def _log_rank(t: _dt.datetime, now: _dt.datetime) -> int:
    ns = (now - t) / _dt.timedelta(microseconds=1) * 1000
    return int(math.log2(ns)) if ns > 0 else -1


def _newer_first(t1: _dt.datetime | None, t2: _dt.datetime | None, now: _dt.datetime | None,
                 uid1: str, uid2: str) -> bool:
    """True if pod 1 should go before pod 2: zero time first, then the more recent one,
    compared in log2 buckets of age (LogarithmicScaleDown) so near-equal ages tie."""
    if t1 is None or t2 is None or now is None:
        if t1 is None or t2 is None:
            return t1 is None
        return t1 > t2
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


def _less(a: tuple[Obj, int], b: tuple[Obj, int], now: _dt.datetime | None) -> bool:
    pa, ra = a
    pb, rb = b
    na, nb = pa.get("spec", {}).get("nodeName") or "", pb.get("spec", {}).get("nodeName") or ""
    if na != nb and (not na or not nb):
        return not na
    pha = _PHASE_ORDINAL.get((pa.get("status") or {}).get("phase") or "", 0)
    phb = _PHASE_ORDINAL.get((pb.get("status") or {}).get("phase") or "", 0)
    if pha != phb:
        return pha < phb
    if is_pod_ready(pa) != is_pod_ready(pb):
        return not is_pod_ready(pa)
    ca, cb = _deletion_cost(pa), _deletion_cost(pb)
    if ca != cb:
        return ca < cb
    if ra != rb:
        return ra > rb
    if is_pod_ready(pa) and is_pod_ready(pb):
        ta, tb = pod_ready_time(pa), pod_ready_time(pb)
        if ta != tb:
            return _newer_first(ta, tb, now, meta.uid(pa), meta.uid(pb))
    if _max_restarts(pa) != _max_restarts(pb):
        return _max_restarts(pa) > _max_restarts(pb)
    ta = meta.parse_time(pa.get("metadata", {}).get("creationTimestamp"))
    tb = meta.parse_time(pb.get("metadata", {}).get("creationTimestamp"))
    if ta != tb:
        return _newer_first(ta, tb, now, meta.uid(pa), meta.uid(pb))
    return False


def rank_for_deletion(pods: list[Obj], related: Iterable[Obj], now: _dt.datetime | None) -> list[Obj]:
    """``pods`` ordered most-deletable first; ``related`` pods give the per-node rank."""
    on_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            n = p.get("spec", {}).get("nodeName") or ""
            on_node[n] = on_node.get(n, 0) + 1
    ranked = [(p, on_node.get(p.get("spec", {}).get("nodeName") or "", 0)) for p in pods]

    def cmp(a: tuple[Obj, int], b: tuple[Obj, int]) -> int:
        if _less(a, b, now):
            return -1
        if _less(b, a, now):
            return 1
        return 0
    return [p for p, _ in sorted(ranked, key=functools.cmp_to_key(cmp))]


def pods_to_delete(pods: list[Obj], related: Iterable[Obj], diff: int, now: _dt.datetime) -> list[Obj]:
    """The ``diff`` pods a shrinking ReplicaSet deletes."""
    if diff < len(pods):
        pods = rank_for_deletion(pods, related, now)
    return pods[:diff]


# --- writes ----------------------------------------------------------------------------

def pod_from_template(template: Obj, owner: Obj, controller_ref: Obj | None) -> Obj:
    """A new pod for ``owner``: template labels/annotations/finalizers/spec, generateName."""
    tmd = template.get("metadata") or {}
    md: Obj = {"generateName": f"{meta.name(owner)}-", "labels": dict(tmd.get("labels") or {})}
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    if controller_ref is not None:
        md["ownerReferences"] = [dict(controller_ref)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}


class PodControl:
    """Creates and deletes pods on behalf of a controller, with events (RealPodControl)."""

    def __init__(self, client: APIClient, recorder: Recorder):
        self.pods = client.resource(PODS)
        self.recorder = recorder

    async def create_pod(self, namespace: str, template: Obj, owner: Obj, controller_ref: Obj) -> Obj:
        """Create one pod; SuccessfulCreate `Created pod: X` or FailedCreate `Error creating: …`."""
        pod = pod_from_template(template, owner, controller_ref)
        if not pod["metadata"]["labels"]:
            raise ValueError("unable to create pods, no labels")
        try:
            created = await self.pods.create(pod, namespace)
        except StatusError as e:
            if not namespace_terminating(e):
                self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {e.message}")
            raise
        self.recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {meta.name(created)}")
        return created

    async def delete_pod(self, namespace: str, name: str, owner: Obj) -> None:
        """Delete one pod; SuccessfulDelete `Deleted pod: X` or FailedDelete."""
        try:
            await self.pods.delete(name, namespace)
        except NotFound:
            raise
        except StatusError as e:
            self.recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            raise
        self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")


def namespace_terminating(e: StatusError) -> bool:
    """True for a create refused because the namespace is being deleted."""
    causes = (e.details or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


# --- ControllerRef claims --------------------------------------------------------------

def owner_ref_patch(owner: Obj, api_version: str, kind: str, obj: Obj, refs: list[Obj]) -> Obj:
    """A merge patch setting ``refs`` as ownerReferences, guarded by uid and resourceVersion."""
    return {"metadata": {"ownerReferences": refs, "uid": meta.uid(obj),
                         "resourceVersion": meta.resource_version(obj)}}


async def claim(objs: Iterable[Obj], *, owner: Obj, api_version: str, kind: str,
                matches: Callable[[Obj], bool], patch: Callable[[Obj, Obj], Awaitable[Any]],
                can_adopt: Callable[[], Awaitable[None]]) -> list[Obj]:
    """The objects ``owner`` controls after adopting matching orphans and releasing
    owned objects that stopped matching (ControllerRefManager.ClaimObject)."""
    claimed: list[Obj] = []
    errors: list[Exception] = []
    adopt_checked: list[Exception | None] = []
    owner_uid = meta.uid(owner)
    for obj in objs:
        ref = meta.controller_ref(obj)
        try:
            if ref is not None:
                if ref.get("uid") != owner_uid:
                    continue  # someone else's
                if matches(obj):
                    claimed.append(obj)
                    continue
                if meta.is_deleting(owner):
                    continue
                refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
                await _ignore_gone(patch(obj, owner_ref_patch(owner, api_version, kind, obj, refs)), release=True)
                continue
            if meta.is_deleting(owner) or not matches(obj) or meta.is_deleting(obj):
                continue
            if meta.namespace(owner) and meta.namespace(owner) != meta.namespace(obj):
                continue
            if not adopt_checked:  # ask once per claim round, as upstream's sync.Once
                try:
                    await can_adopt()
                    adopt_checked.append(None)
                except Exception as e:
                    adopt_checked.append(e)
            if adopt_checked[0] is not None:
                raise RuntimeError(f"can't adopt {meta.key(obj)}: {adopt_checked[0]}")
            refs = list(obj["metadata"].get("ownerReferences") or []) + [meta.new_controller_ref(owner, api_version, kind)]
            if await _ignore_gone(patch(obj, owner_ref_patch(owner, api_version, kind, obj, refs))):
                claimed.append(obj)
        except Exception as e:
            errors.append(e)
    if errors:
        raise errors[0]
    return claimed


async def _ignore_gone(aw: Awaitable[Any], release: bool = False) -> bool:
    """Run a claim patch; a vanished object (or an invalid release) is not an error."""
    try:
        await aw
        return True
    except NotFound:
        return False
    except Invalid:
        if release:
            return False
        raise


async def can_adopt_check(get_fresh: Callable[[], Awaitable[Obj]], owner: Obj) -> None:
    """RecheckDeletionTimestamp: adopt only if a fresh read shows the same, live owner."""
    fresh = await get_fresh()
    if meta.uid(fresh) != meta.uid(owner):
        raise RuntimeError(f"original {meta.key(owner)} is gone: got uid {meta.uid(fresh)}, wanted {meta.uid(owner)}")
    if meta.is_deleting(fresh):
        raise RuntimeError(f"{meta.key(owner)} has just been deleted at {fresh['metadata']['deletionTimestamp']}")
