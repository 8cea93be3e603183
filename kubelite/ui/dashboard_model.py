"""What the dashboard page shows, as JSON-ready dicts built from informer caches.

Pure functions only: Deployments, ReplicaSets, pods and events (plain dicts, as the
caches hold them) in, one snapshot out.  The rollout itself is read through
``rollout_state`` (the same model and the same sentence as `kubelite rollout watch`), so
the page and the terminal view never disagree about which step a rollout is at.  The
page gets the whole snapshot on every change (level-based, like the controllers): it
never has to merge deltas, and a slow page simply skips snapshots it did not read.
"""
from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from kubelite.api import meta
from kubelite.controllers.deployment import util
from kubelite.proxy.stats import TRAFFIC_ANNOTATION, Counts, decode
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
# Requests/s are taken over the counts of about this many seconds (the proxies publish every ~2 s).
RATE_WINDOW = 10.0

# (namespace, pod-template-hash) → what the page shows about that revision's traffic, or None.
TrafficLookup = Callable[[str, str], Obj | None]

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


class TrafficRates:
    """Every proxy's counts per revision, and requests/s and errors/s from how they grew.

    Fed the proxy Leases on every snapshot (``observe``); keeps, per revision, the totals
    seen over the last ``RATE_WINDOW`` seconds and reports the rate between the oldest and
    the newest of them."""

    def __init__(self) -> None:
        self._samples: dict[tuple[str, str], deque[tuple[float, Counts]]] = {}

    def observe(self, now: float, leases: Iterable[Obj]) -> None:
        """Sum the Leases' counts by (namespace, revision) and remember them at ``now``."""
        totals: dict[tuple[str, str], Counts] = {}
        for lease in leases:
            for (ns, _svc, h), c in decode(meta.annotations_of(lease).get(TRAFFIC_ANNOTATION)).items():
                totals[(ns, h)] = totals.get((ns, h), Counts()).plus(c)
        for k in [k for k in self._samples if k not in totals]:
            del self._samples[k]
        for k, c in totals.items():
            q = self._samples.setdefault(k, deque())
            q.append((now, c))
            while len(q) > 2 and q[1][0] <= now - RATE_WINDOW:
                q.popleft()

    def busy(self) -> bool:
        """Some revision's rate is not zero (the page needs redrawing as time passes)."""
        return any(q[0][1] != q[-1][1] for q in self._samples.values())

    def view(self, namespace: str, h: str) -> Obj | None:
        """Totals and per-second rates of one revision (None: no proxy counted it)."""
        q = self._samples.get((namespace, h))
        if not q:
            return None
        (t0, first), (t1, last) = q[0], q[-1]
        span = t1 - t0
        delta = last.since(first)

        def per_second(n: int) -> float:
            return round(n / span, 1) if span > 0 else 0.0
        return {"requests": last.requests, "errors": last.errors, "failed": last.failed, "http5xx": last.http5xx,
                "requestsPerSecond": per_second(delta.requests), "errorsPerSecond": per_second(delta.errors)}


def _rs_view(v: ReplicaSetView, traffic: TrafficLookup | None = None) -> Obj:
    h = meta.labels(v.rs).get(util.POD_TEMPLATE_HASH, "")
    return {
        "traffic": traffic(meta.namespace(v.rs), h) if traffic is not None and h else None,
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


def deployment_view(d: Obj, replicasets: list[Obj], pods: list[Obj], events: list[Obj],
                    traffic: TrafficLookup | None = None) -> Obj:
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
        "replicasets": [_rs_view(v, traffic) for v in state.replicasets],
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
             namespace: str, server: str, traffic: TrafficLookup | None = None) -> Obj:
    """Every Deployment's rollout (by namespace, then name), for one message to the page."""
    by_ns: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = defaultdict(lambda: ([], [], []))
    for i, objs in enumerate((replicasets, pods, events)):
        for o in objs:
            by_ns[meta.namespace(o)][i].append(o)
    views = []
    for d in sorted(deployments, key=lambda d: (meta.namespace(d), meta.name(d))):
        rss, ps, evs = by_ns[meta.namespace(d)]
        try:
            views.append(deployment_view(d, rss, ps, evs, traffic))
        except ValueError as e:
            # A hand-edited annotation (a revision that is not a number) must not blank the page.
            views.append(unreadable_view(d, str(e)))
    return {"namespace": namespace, "server": server, "now": meta.rfc3339(), "deployments": views}
