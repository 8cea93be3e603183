"""What the dashboard page shows, as JSON-ready dicts built from informer caches.

Pure functions only: Deployments, ReplicaSets, pods and events (plain dicts, as the
caches hold them) in, one snapshot out.  The rollout itself is read through
``rollout_state`` (the same model and the same sentence as `kubelite rollout watch`), so
the page and the terminal view never disagree about which step a rollout is at.  The
page gets the whole snapshot on every change (level-based, like the controllers): it
never has to merge deltas, and a slow page simply skips snapshots it did not read.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from kubelite.api import meta
from kubelite.controllers.deployment import util
from kubelite.ui.rollout import relevant_events
from kubelite.ui.rollout_state import (
    CRASH_FAILURES,
    IMAGE_FAILURES,
    READY,
    ReplicaSetView,
    RolloutState,
    build_state,
    explain,
    pod_restarts,
    pod_state,
)

Obj = dict[str, Any]

MAX_EVENTS = 12

# Pod states the page colours as failures (the rest have their own colour each).
FAILING_STATES = IMAGE_FAILURES | CRASH_FAILURES | {"Failed"}


def tone(step: str) -> str:
    """ok, bad or busy: how the page colours the controller's step."""
    if step.startswith(("rolled out", "scaled to zero")):
        return "ok"
    if step.startswith(("stuck", "failed")):
        return "bad"
    return "busy"


def _event_time(ev: Obj) -> str:
    return ev.get("lastTimestamp") or ev.get("eventTime") or meta.meta(ev).get("creationTimestamp") or ""


def _pod_view(pod: Obj, rs_name: str) -> Obj:
    name = meta.name(pod)
    state = pod_state(pod)
    return {
        "name": name,
        "short": name[len(rs_name) + 1:] if name.startswith(rs_name + "-") else name,
        "state": state,
        "ready": state == READY,
        "failing": state in FAILING_STATES,
        "restarts": pod_restarts(pod),
        "ip": (pod.get("status") or {}).get("podIP") or "",
        "node": (pod.get("spec") or {}).get("nodeName") or "",
        "created": meta.meta(pod).get("creationTimestamp") or "",
    }


def _rs_view(v: ReplicaSetView) -> Obj:
    return {
        "name": v.name, "revision": v.revision, "new": v.new, "image": v.image,
        "desired": v.desired, "current": v.current, "ready": v.ready, "available": v.available,
        "created": meta.meta(v.rs).get("creationTimestamp") or "",
        "pods": [_pod_view(p, v.name) for p in v.pods],
    }


def rollout_events(events: list[Obj], state: RolloutState) -> list[Obj]:
    """Events about the Deployment, its ReplicaSets or their pods, oldest first (the last few)."""
    picked = {meta.uid(ev): ev for ev in relevant_events(events, state)}
    pods = {meta.name(p) for v in state.replicasets for p in v.pods}
    for ev in events:
        io = ev.get("involvedObject") or {}
        if io.get("kind") == "Pod" and io.get("name") in pods:
            picked[meta.uid(ev)] = ev
    ordered = sorted(picked.values(), key=lambda ev: (_event_time(ev)[:19], meta.name(ev)))
    out = []
    for ev in ordered[-MAX_EVENTS:]:
        io = ev.get("involvedObject") or {}
        out.append({"type": ev.get("type") or "Normal", "reason": ev.get("reason") or "",
                    "message": ev.get("message") or "", "count": int(ev.get("count") or 1),
                    "time": _event_time(ev), "object": f"{io.get('kind', '')}/{io.get('name', '')}"})
    return out


def _revision(obj: Obj) -> int:
    try:
        return util.revision(obj)
    except ValueError:  # someone wrote a non-number into the annotation; the page shows 0
        return 0


def _strategy(d: Obj) -> str:
    kind = util.strategy_type(d)
    if kind != "RollingUpdate":
        return kind
    return f"RollingUpdate (maxSurge {util.max_surge(d)}, maxUnavailable {util.max_unavailable(d)})"


def deployment_view(d: Obj, replicasets: list[Obj], pods: list[Obj], events: list[Obj]) -> Obj:
    """One Deployment's rollout as the page draws it (one card)."""
    state = build_state(d, replicasets, pods)
    step = explain(state)
    status = d.get("status") or {}
    revisions = [v.revision for v in state.replicasets if v.revision]
    return {
        "namespace": meta.namespace(d), "name": meta.name(d), "uid": meta.uid(d),
        "revision": _revision(d),
        "generation": int(meta.meta(d).get("generation") or 0),
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "paused": bool((d.get("spec") or {}).get("paused")),
        "replicas": util.replicas(d), "strategy": _strategy(d),
        "status": {f: int(status.get(f) or 0) for f in
                   ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas")},
        "conditions": [{k: c.get(k, "") for k in ("type", "status", "reason", "message")}
                       for c in status.get("conditions") or []],
        "step": step, "tone": tone(step),
        "autoRollback": meta.annotations_of(d).get(util.KUBELITE_ROLLOUT_PREFIX + "auto-rollback") == "true",
        "rolledBackFrom": meta.annotations_of(d).get(util.ROLLED_BACK_FROM, ""),
        # `rollout undo` needs a second revision to go back to.
        "canUndo": len(set(revisions)) >= 2,
        "replicasets": [_rs_view(v) for v in state.replicasets],
        "events": rollout_events(events, state),
    }


def unreadable_view(d: Obj, why: str) -> Obj:
    """A card for a Deployment whose objects cannot be read as a rollout."""
    return {"namespace": meta.namespace(d), "name": meta.name(d), "uid": meta.uid(d), "revision": 0,
            "generation": 0, "observedGeneration": 0, "paused": bool((d.get("spec") or {}).get("paused")),
            "replicas": util.replicas(d), "strategy": "", "status": {}, "conditions": [],
            "step": f"cannot read this rollout: {why}", "tone": "bad", "autoRollback": False,
            "rolledBackFrom": "", "canUndo": False, "replicasets": [], "events": []}


def snapshot(deployments: list[Obj], replicasets: list[Obj], pods: list[Obj], events: list[Obj], *,
             namespace: str, server: str) -> Obj:
    """Every Deployment's rollout (by namespace, then name), for one message to the page."""
    by_ns: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = defaultdict(lambda: ([], [], []))
    for i, objs in enumerate((replicasets, pods, events)):
        for o in objs:
            by_ns[meta.namespace(o)][i].append(o)
    views = []
    for d in sorted(deployments, key=lambda d: (meta.namespace(d), meta.name(d))):
        rss, ps, evs = by_ns[meta.namespace(d)]
        try:
            views.append(deployment_view(d, rss, ps, evs))
        except ValueError as e:
            # A hand-edited annotation (a revision that is not a number) must not blank the page.
            views.append(unreadable_view(d, str(e)))
    return {"namespace": namespace, "server": server, "now": meta.rfc3339(), "deployments": views}
