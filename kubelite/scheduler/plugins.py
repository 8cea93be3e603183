"""Filter and score plugins, pure functions over plain dicts (kube-scheduler's framework).

A filter returns None when the node fits, or the reason it does not, worded like
upstream so the FailedScheduling event reads
``0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {…}.``
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import nodeselector, quantity
from kubelite.api.tolerations import tolerates

Obj = dict[str, Any]


# Upstream's defaults for a container without a request, used when scoring (never when
# filtering): without them, pods with no requests look free and pile onto one node.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 2**20


@dataclass
class Usage:
    """Running totals of the pods on one node, kept as pods come and go rather than summed per placement."""

    cpu: int = 0
    mem: int = 0
    nz_cpu: int = 0  # with upstream's non-zero defaults per container (scoring)
    nz_mem: int = 0
    owners: dict[str, int] = field(default_factory=dict)  # controller uid -> pods on the node

    def add(self, pod: Obj, sign: int = 1) -> None:
        """Count a pod in (sign 1) or out (sign -1)."""
        c, m = pod_requests(pod)
        nc, nm = pod_requests_nonzero(pod)
        self.cpu += sign * c
        self.mem += sign * m
        self.nz_cpu += sign * nc
        self.nz_mem += sign * nm
        owner = controller_uid(pod)
        if owner:
            left = self.owners.get(owner, 0) + sign
            if left > 0:
                self.owners[owner] = left
            else:
                self.owners.pop(owner, None)

    @classmethod
    def of(cls, pods: Iterable[Obj]) -> Usage:
        """The totals of some pods, summed from scratch."""
        u = cls()
        for p in pods:
            u.add(p)
        return u


@dataclass
class NodeInfo:
    """A node and what is already placed on it."""

    node: Obj
    pods: Collection[Obj] = field(default_factory=list)
    usage: Usage | None = None  # the caller's running totals; summed from ``pods`` when absent

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]

    def _usage(self) -> Usage:
        if self.usage is None:
            self.usage = Usage.of(self.pods)
        return self.usage

    def requested(self) -> tuple[int, int, int]:
        """(milli-cpu, memory bytes, pod count) requested by the pods on the node."""
        u = self._usage()
        return u.cpu, u.mem, len(self.pods)

    def nonzero_requested(self) -> tuple[int, int]:
        """(milli-cpu, memory bytes) with upstream's defaults for containers without requests."""
        u = self._usage()
        return u.nz_cpu, u.nz_mem

    def same_owner(self, uid: str) -> int:
        """How many pods on the node have this controller uid."""
        return self._usage().owners.get(uid, 0)

    def allocatable(self) -> tuple[int, int, int]:
        """(milli-cpu, memory bytes, pods) the node offers."""
        md = self.node.get("metadata") or {}
        k = (md.get("name", ""), md.get("resourceVersion", ""))
        if k[1] and k in _ALLOCATABLE:
            return _ALLOCATABLE[k]
        a = (self.node.get("status") or {}).get("allocatable") or {}
        out = quantity.milli(a.get("cpu", "0")), quantity.value(a.get("memory", "0")), quantity.value(a.get("pods", "110"))
        if k[1]:
            if len(_ALLOCATABLE) > 10_000:
                _ALLOCATABLE.clear()
            _ALLOCATABLE[k] = out
        return out


# Parsed allocatable per (node name, resourceVersion): parsing quantities for every node in
# every scheduling cycle was a third of the scheduler's time.
_ALLOCATABLE: dict[tuple[str, str], tuple[int, int, int]] = {}


def controller_uid(pod: Obj) -> str:
    """The uid of the pod's controller owner ("" when it has none)."""
    for r in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if r.get("controller"):
            return str(r.get("uid") or "")
    return ""


_REQUESTS: dict[tuple[str, str], tuple[int, int, int, int]] = {}


def _cached(pod: Obj) -> tuple[int, int, int, int]:
    md = pod.get("metadata") or {}
    k = (md.get("uid", ""), md.get("resourceVersion", ""))
    if k[0] and k in _REQUESTS:
        return _REQUESTS[k]
    out = _pod_requests(pod, False) + _pod_requests(pod, True)
    if k[0]:
        if len(_REQUESTS) > 50_000:  # parsed quantities are cheap to recompute; bound memory
            _REQUESTS.clear()
        _REQUESTS[k] = out
    return out


def pod_requests(pod: Obj) -> tuple[int, int]:
    """Effective (milli-cpu, memory) requests: max(sum of containers, any init container)."""
    c, m, _, _ = _cached(pod)
    return c, m


def pod_requests_nonzero(pod: Obj) -> tuple[int, int]:
    """Like ``pod_requests``, with 100m / 200Mi for each container that requests none (scoring only)."""
    _, _, c, m = _cached(pod)
    return c, m


def _pod_requests(pod: Obj, nonzero: bool) -> tuple[int, int]:
    spec = pod.get("spec") or {}

    def req(c: Obj) -> tuple[int, int]:
        r = (c.get("resources") or {}).get("requests") or {}
        if nonzero:  # only a missing request takes the default; an explicit 0 stays 0
            return (quantity.milli(r["cpu"]) if "cpu" in r else DEFAULT_MILLI_CPU,
                    quantity.value(r["memory"]) if "memory" in r else DEFAULT_MEMORY)
        return quantity.milli(r.get("cpu")), quantity.value(r.get("memory"))
    main = [req(c) for c in spec.get("containers") or []]
    cpu = sum(c for c, _ in main)
    mem = sum(m for _, m in main)
    for c in spec.get("initContainers") or []:
        ic, im = req(c)
        cpu, mem = max(cpu, ic), max(mem, im)
    return cpu, mem


def node_ready(n: NodeInfo, pod: Obj) -> str | None:
    """NodeReady (enforced upstream through the not-ready taint; kept explicit here)."""
    for c in (n.node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            if c.get("status") == "True":
                return None
            break
    taint = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    if any(tolerates(t, taint) for t in (pod.get("spec") or {}).get("tolerations") or []):
        return None
    return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"


def node_unschedulable(n: NodeInfo, pod: Obj) -> str | None:
    """NodeUnschedulable: cordoned nodes take only pods that tolerate it."""
    if not (n.node.get("spec") or {}).get("unschedulable"):
        return None
    taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    if any(tolerates(t, taint) for t in (pod.get("spec") or {}).get("tolerations") or []):
        return None
    return "node(s) were unschedulable"


def taint_toleration(n: NodeInfo, pod: Obj) -> str | None:
    """TaintToleration: every NoSchedule/NoExecute taint must be tolerated."""
    tols = (pod.get("spec") or {}).get("tolerations") or []
    for t in (n.node.get("spec") or {}).get("taints") or []:
        if t.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(tol, t) for tol in tols):
            return f"node(s) had untolerated taint {{{t.get('key')}: {t.get('value', '')}}}"
    return None


def node_affinity(n: NodeInfo, pod: Obj) -> str | None:
    """NodeAffinity: nodeSelector and required node affinity terms (ORed terms, ANDed expressions)."""
    spec = pod.get("spec") or {}
    labels = n.node["metadata"].get("labels") or {}
    reason = "node(s) didn't match Pod's node affinity/selector"
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return reason
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms")
    if terms and not nodeselector.terms_match(terms, n.node):
        return reason
    return None


def node_resources_fit(n: NodeInfo, pod: Obj) -> str | None:
    """NodeResourcesFit: requests must fit in what is left of allocatable."""
    cpu, mem = pod_requests(pod)
    ucpu, umem, upods = n.requested()
    acpu, amem, apods = n.allocatable()
    if upods + 1 > apods:
        return "Too many pods"
    if cpu and ucpu + cpu > acpu:
        return "Insufficient cpu"
    if mem and umem + mem > amem:
        return "Insufficient memory"
    return None


def _host_ports(pod: Obj) -> set[tuple[str, int, str]]:
    out = set()
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.add((p.get("hostIP") or "0.0.0.0", int(p["hostPort"]), p.get("protocol", "TCP")))
    return out


def node_ports(n: NodeInfo, pod: Obj) -> str | None:
    """NodePorts: a hostPort may be used once per node (0.0.0.0 conflicts with any IP)."""
    want = _host_ports(pod)
    if not want:
        return None
    used = set()
    for p in n.pods:
        used |= _host_ports(p)
    for ip, port, proto in want:
        for uip, uport, uproto in used:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return "node(s) didn't have free ports for the requested pod ports"
    return None


# Upstream's default filter order; a node reports only the first filter it fails.
FILTERS: list[Callable[[NodeInfo, Obj], str | None]] = [
    node_unschedulable, node_ready, taint_toleration, node_affinity, node_ports, node_resources_fit,
]


def least_allocated(n: NodeInfo, pod: Obj) -> float:
    """NodeResourcesFit LeastAllocated score in [0, 100], on non-zero requests as upstream scores."""
    cpu, mem = pod_requests_nonzero(pod)
    ucpu, umem = n.nonzero_requested()
    acpu, amem, _ = n.allocatable()
    scores = []
    for used, cap in ((ucpu + cpu, acpu), (umem + mem, amem)):
        scores.append(0.0 if cap <= 0 or used > cap else (cap - used) * 100.0 / cap)
    return sum(scores) / len(scores)


def selector_spread(n: NodeInfo, pod: Obj) -> float:
    """Spreading: fewer pods of the same controller on a node scores higher."""
    owner = controller_uid(pod)
    if not owner:
        return 0.0
    return 100.0 / (1 + n.same_owner(owner))


def score(n: NodeInfo, pod: Obj) -> float:
    """Weighted sum of score plugins."""
    return least_allocated(n, pod) + 2 * selector_spread(n, pod)


# Filters whose failure evicting pods cannot cure (upstream: UnschedulableAndUnresolvable);
# the others (ports, resources) send the preemption plugin looking for victims.
UNRESOLVABLE = {node_unschedulable, node_ready, node_affinity, taint_toleration}


def failure_message(total: int, reasons: dict[str, int], preemptible: int = 0) -> str:
    """Upstream's FailedScheduling summary (reasons sorted, then the preemption note).

    ``preemptible``: how many nodes failed only a filter that preemption could satisfy; with no
    lower-priority pods to evict, those read "No preemption victims found for incoming pod"."""
    # upstream sorts the whole "<count> <reason>" strings, so counts order first (as text)
    parts = ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))
    msg = f"0/{total} nodes are available"
    if parts:
        msg += f": {parts}"
    notes = {"No preemption victims found for incoming pod": preemptible,
             "Preemption is not helpful for scheduling": total - preemptible}
    why = ", ".join(sorted(f"{n} {note}" for note, n in notes.items() if n))
    msg += f". preemption: 0/{total} nodes are available: {why}."
    return msg
