"""Traffic weights per Deployment revision, as the canary / blue-green controller publishes them.

The Deployment controller (controllers/deployment/canary.py) writes
``rollout.kubelite.dev/traffic-weights: "<pod-template-hash>=<weight>,…"`` on a Deployment
while a canary or blue/green rollout is in flight.  Both data paths read it from a
Deployment informer and split the endpoints of a Service by revision: a pod of a
ReplicaSet is named ``<deployment>-<pod-template-hash>-<suffix>``, and the endpoint's
targetRef carries that name, so no pod informer is needed.

A Service whose usable endpoints all belong to one revision, or to no weighted
Deployment, is left alone (plain equal spreading, no extra rules).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubelite.api import meta
from kubelite.proxy.balancer import Endpoint, Groups

Obj = dict[str, Any]

TRAFFIC_WEIGHTS = "rollout.kubelite.dev/traffic-weights"


def parse_weights(text: str | None) -> dict[str, int]:
    """``"abc=20,def=80"`` → {"abc": 20, "def": 80}; malformed entries are skipped."""
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        h, sep, w = part.strip().partition("=")
        if not sep or not h.strip():
            continue
        try:
            n = int(w.strip())
        except ValueError:
            continue
        if n >= 0:
            out[h.strip()] = n
    return out


def format_weights(weights: dict[str, int]) -> str:
    """The annotation's text for {hash: weight} (sorted, so equal weights give equal text)."""
    return ",".join(f"{h}={w}" for h, w in sorted(weights.items()))


class WeightTable:
    """namespace → [(deployment name, {hash: weight})] from the Deployments that publish weights."""

    def __init__(self, deployments: Iterable[Obj] = ()):
        self.by_ns: dict[str, list[tuple[str, dict[str, int]]]] = {}
        for d in deployments:
            w = parse_weights(meta.annotations_of(d).get(TRAFFIC_WEIGHTS))
            if w:
                self.by_ns.setdefault(meta.namespace(d), []).append((meta.name(d), w))

    def __bool__(self) -> bool:
        return bool(self.by_ns)

    def groups(self, namespace: str, eps: list[Endpoint]) -> Groups | None:
        """The endpoints split by revision with their weights, or None (spread equally)."""
        candidates = self.by_ns.get(namespace)
        if not candidates or not eps:
            return None
        for dname, weights in candidates:
            found = _split(dname, weights, eps)
            if found is not None:
                return found
        return None


def _revision_of(dname: str, pod_name: str) -> str | None:
    """The pod-template-hash in ``<dname>-<hash>-<suffix>``, or None if the name is not of that shape."""
    if not pod_name.startswith(dname + "-"):
        return None
    h, sep, suffix = pod_name[len(dname) + 1:].partition("-")
    if not sep or not h or not suffix or "-" in suffix:
        return None
    return h


def _split(dname: str, weights: dict[str, int], eps: list[Endpoint]) -> Groups | None:
    by_hash: dict[str, list[Endpoint]] = {}
    for e in eps:
        h = _revision_of(dname, e.pod_name)
        if h is None:
            return None  # an endpoint of something else: not this Deployment's rollout
        by_hash.setdefault(h, []).append(e)
    if len(by_hash) < 2 or not any(h in weights for h in by_hash):
        return None
    # A revision the controller did not list (an abandoned canary going away) gets nothing.
    groups = [(weights.get(h, 0), by_hash[h]) for h in sorted(by_hash)]
    if sum(w for w, _ in groups) <= 0:
        return None  # nobody with a weight can serve: better equal spreading than refusing
    return groups
