"""The scheduler's cache: which active pods sit on which node, with running totals.

Upstream twin: ``pkg/scheduler/internal/cache`` (assume / finish binding / forget /
expire) and its ``debugger`` (the comparer that checks the cache against the informer).

- The informer is the truth.  A pod the informer shows bound and not terminal is placed
  on its node; a terminal or deleted one is removed.
- Before its bind request goes out a pod is *assumed* on the chosen node, so the next
  scheduling cycles see the capacity as taken.  A bind that fails in any way is
  *forgotten* at once; a bind that succeeded but whose pod the informer never shows
  bound (the watch missed it, the pod was replaced) *expires* ``ttl`` seconds after the
  bind returned (the scheduler asks the server first: a watch that is only late must
  not free capacity that is taken).  Without that, a pod counts on a node forever: the
  phantom pods that made a busy cluster report "Too many pods" with free slots.
- ``compare`` is the debugger: it rebuilds the expected placement from the informer's
  pods plus the assumed ones, repairs every difference and reports it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.scheduler.plugins import NodeInfo, Usage

log = logging.getLogger("kubelite.scheduler")
Obj = dict[str, Any]

# How long a successfully bound pod may stay unseen by the informer before it stops
# counting on its node.  The watch normally delivers the binding within milliseconds.
ASSUMED_TTL = 30.0


def is_active(pod: Obj) -> bool:
    """Not in a terminal phase (a terminating pod still holds its resources)."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def bound_node(pod: Obj) -> str:
    """spec.nodeName ("" while unbound)."""
    return str((pod.get("spec") or {}).get("nodeName") or "")


@dataclass
class NodePods:
    """The pods counted on one node and their totals."""

    pods: dict[str, Obj] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    def add(self, key: str, pod: Obj) -> None:
        """Count a pod (replacing an older copy of it)."""
        self.remove(key)
        self.pods[key] = pod
        self.usage.add(pod)

    def remove(self, key: str) -> None:
        """Stop counting a pod."""
        old = self.pods.pop(key, None)
        if old is not None:
            self.usage.add(old, -1)


@dataclass
class Assumed:
    """A pod placed by this scheduler before the informer confirmed it."""

    node: str
    expires: float | None = None  # set once the bind returned; None while it is in flight


class SchedulerCache:
    """Per-node pod accounting fed by the pod informer and the scheduler's own binds."""

    def __init__(self, *, ttl: float = ASSUMED_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._nodes: dict[str, NodePods] = {}
        self._node_of: dict[str, str] = {}
        self._assumed: dict[str, Assumed] = {}

    # -- placement ------------------------------------------------------------------------
    def _place(self, key: str, node: str, pod: Obj) -> None:
        old = self._node_of.get(key)
        if old is not None and old != node:
            self._unplace(key)
        self._node_of[key] = node
        self._nodes.setdefault(node, NodePods()).add(key, pod)

    def _unplace(self, key: str) -> None:
        node = self._node_of.pop(key, None)
        if node is None:
            return
        np = self._nodes.get(node)
        if np is not None:
            np.remove(key)
            if not np.pods:
                del self._nodes[node]

    def node_of(self, key: str) -> str | None:
        """The node a pod counts on, if any."""
        return self._node_of.get(key)

    def pods_on(self, node: str) -> list[str]:
        """Keys of the pods counted on a node."""
        np = self._nodes.get(node)
        return list(np.pods) if np else []

    def node_info(self, node: Obj) -> NodeInfo:
        """The NodeInfo of a node for filters and scores (shares the cache's totals; read only)."""
        np = self._nodes.get(meta.name(node))
        if np is None:
            return NodeInfo(node, [], Usage())
        return NodeInfo(node, np.pods.values(), np.usage)

    # -- the scheduler's own binds ----------------------------------------------------------
    def assume(self, key: str, node: str, pod: Obj) -> None:
        """Count a pod on ``node`` before its bind request goes out."""
        self._assumed[key] = Assumed(node)
        self._place(key, node, pod)

    def is_assumed(self, key: str) -> bool:
        """Placed by us and not yet confirmed by the informer."""
        return key in self._assumed

    def finish_binding(self, key: str) -> None:
        """The bind returned success: start the expiry clock."""
        a = self._assumed.get(key)
        if a is not None:
            a.expires = self.clock() + self.ttl

    def forget(self, key: str) -> None:
        """The bind failed: undo the assumption (a placement the informer confirmed stays)."""
        a = self._assumed.pop(key, None)
        if a is not None and self._node_of.get(key) == a.node:
            self._unplace(key)

    def expired(self) -> list[str]:
        """Assumed pods whose bind returned over ``ttl`` ago and that the informer has not shown bound."""
        now = self.clock()
        return [k for k, a in self._assumed.items() if a.expires is not None and a.expires <= now]

    # -- the informer -------------------------------------------------------------------
    def on_pod(self, pod: Obj) -> None:
        """An added or updated pod from the informer."""
        key, node = meta.key(pod), bound_node(pod)
        if node:
            self._assumed.pop(key, None)  # confirmed (on whatever node the server says)
            if is_active(pod):
                self._place(key, node, pod)
            else:
                self._unplace(key)
        elif key not in self._assumed:
            self._unplace(key)

    def on_pod_deleted(self, pod: Obj) -> None:
        """A deleted pod from the informer."""
        key = meta.key(pod)
        self._assumed.pop(key, None)
        self._unplace(key)

    # -- the debugger ---------------------------------------------------------------------
    def compare(self, pods: Iterable[Obj]) -> list[str]:
        """Check the cache against the informer's pods; repair and describe every difference."""
        want: dict[str, tuple[str, Obj]] = {}
        for p in pods:
            node = bound_node(p)
            if node and is_active(p):
                want[meta.key(p)] = (node, p)
        diffs: list[str] = []
        for key, node in list(self._node_of.items()):
            if key in self._assumed and key not in want:
                continue  # our bind, not seen yet: the expiry clock handles it
            if key not in want:
                diffs.append(f"pod {key} counted on {node} but not bound to any node")
                self._assumed.pop(key, None)
                self._unplace(key)
            elif want[key][0] != node:
                diffs.append(f"pod {key} counted on {node} but bound to {want[key][0]}")
                self._assumed.pop(key, None)
                self._place(key, want[key][0], want[key][1])
        for key, (node, p) in want.items():
            if key not in self._node_of:
                diffs.append(f"pod {key} bound to {node} but not counted")
                self._place(key, node, p)
        for name, np in self._nodes.items():
            fresh = Usage.of(np.pods.values())
            if fresh != np.usage:
                diffs.append(f"node {name}: running totals {np.usage} differ from the pods' {fresh}")
                np.usage = fresh
        return diffs
