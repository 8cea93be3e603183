"""Benchmark and invariant run for StatefulSets and DaemonSets on the fake runtime, beside
bench/rollout.py's Deployment (whose watches, per-pod clock, cluster invariants and table
printer it reuses).

- ``--kind statefulset``: a StatefulSet (with its headless Service) scaled 0 → N, then all
  N rolled to a new image (RollingUpdate, maxUnavailable 1). With OrderedReady (the
  default) pod i+1 must not be created before pods 0..i are Ready; in both modes the update
  must replace pods from the highest ordinal down with at most maxUnavailable ordinals
  without a Ready pod at any moment.
- ``--kind daemonset``: a DaemonSet over K nodes (the server's own plus K-1 joined fake
  agents), timed to one Ready pod per node, then rolled to a new image with maxUnavailable 1
  (or, with ``--max-surge 1``, maxSurge 1 and maxUnavailable 0). At no moment may more than
  maxUnavailable nodes lack a Ready pod, nor more than maxSurge nodes hold two; at the end
  every node holds exactly one Ready pod of the new image.

bench/rollout.py's cluster invariants (nothing stuck Terminating, no orphans, no node over
capacity, no phantom "Too many pods", settled after the rollout) are checked too. Exit
status 1 with a message per violation. Not run by CI:

    python bench/workloads.py --kind statefulset --replicas 100
    python bench/workloads.py --kind statefulset --replicas 100 --pod-management Parallel
    python bench/workloads.py --kind daemonset --nodes 100
    python bench/workloads.py --kind daemonset --nodes 100 --max-surge 1
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# rollout also puts the repository and tests/ on sys.path and sets KUBELITE_OFFLINE.
import rollout as rb

from kubelite.api.resources import lookup
from kubelite.client.rest import Client, ResourceClient
from tests.conftest import start_server

Obj = dict[str, Any]
NAME = "web"
CONTAINER = "kubernetes-bootcamp"


def ordinal(pod_name: str) -> int:
    """The ordinal of a StatefulSet pod from its name (web-7 → 7)."""
    return int(pod_name.rsplit("-", 1)[1])


def serving(pod: Obj | None) -> bool:
    """Ready and not being deleted: the pod counts as available."""
    return pod is not None and rb.is_ready(pod) and not pod["metadata"].get("deletionTimestamp")


def image_of(pod: Obj) -> str:
    """The image of the pod's first container."""
    return str(pod["spec"]["containers"][0]["image"])


class Invariants:
    """Violations seen on the pod watch, each reported once."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.updating = False  # set when the rolling update starts

    def violate(self, message: str) -> None:
        """Record (and print) a violation the first time it is seen."""
        if message not in self.violations:
            self.violations.append(message)
            print(f"INVARIANT VIOLATED: {message}", flush=True)


class StatefulSetInvariants(Invariants):
    """OrderedReady creation order, and the rolling update's order and unavailability bound."""

    def __init__(self, replicas: int, ordered: bool, old_image: str, max_unavailable: int = 1) -> None:
        super().__init__()
        self.replicas, self.ordered, self.old_image = replicas, ordered, old_image
        self.max_unavailable = max_unavailable
        self.by_name: dict[str, Obj] = {}
        self.seen: set[str] = set()
        self.replaced: list[int] = []  # ordinals whose old pod went away, in order
        self._replaced_uids: set[str] = set()

    def on_pod(self, typ: str, pod: Obj) -> None:
        """Apply one watch event and check the invariants on the state after it."""
        md = pod["metadata"]
        name, uid = md["name"], md["uid"]
        first = uid not in self.seen
        self.seen.add(uid)
        if typ == "DELETED":
            if self.by_name.get(name, {}).get("metadata", {}).get("uid") == uid:
                del self.by_name[name]
        else:
            self.by_name[name] = pod
        k = ordinal(name)
        # The watch delivers events in resourceVersion order, so pod k's creation comes after
        # the Ready of every pod the controller saw before creating it.
        if first and typ != "DELETED" and self.ordered and not self.updating:
            behind = [j for j in range(k) if not serving(self.by_name.get(f"{NAME}-{j}"))]
            if behind:
                self.violate(f"{name} created while {NAME}-{behind[0]} was not Ready (OrderedReady)")
        if not self.updating:
            return
        going = typ == "DELETED" or bool(md.get("deletionTimestamp"))
        if going and image_of(pod) == self.old_image and uid not in self._replaced_uids:
            self._replaced_uids.add(uid)
            if self.replaced and k >= self.replaced[-1]:
                self.violate(f"update replaced {name} after {NAME}-{self.replaced[-1]} (not highest ordinal first)")
            self.replaced.append(k)
        down = [j for j in range(self.replicas) if not serving(self.by_name.get(f"{NAME}-{j}"))]
        if len(down) > self.max_unavailable:
            self.violate(f"{len(down)} ordinals without a Ready pod during the update "
                         f"({', '.join(map(str, down[:5]))}), maxUnavailable {self.max_unavailable}")

    def final(self, new_image: str) -> None:
        """After the rollout: every ordinal replaced once, each pod Ready at the new image."""
        if sorted(self.replaced) != list(range(self.replicas)):
            self.violate(f"update replaced ordinals {self.replaced}, expected each of 0..{self.replicas - 1} once")
        for j in range(self.replicas):
            p = self.by_name.get(f"{NAME}-{j}")
            if not serving(p) or p is None or image_of(p) != new_image:
                self.violate(f"{NAME}-{j} is not a Ready pod of {new_image} after the rollout")


class DaemonSetInvariants(Invariants):
    """During the update: nodes without a Ready pod ≤ maxUnavailable, nodes holding two pods ≤
    maxSurge; at the end one Ready pod of the new image per node."""

    def __init__(self, nodes: list[str], max_unavailable: int, max_surge: int) -> None:
        super().__init__()
        self.nodes, self.max_unavailable, self.max_surge = nodes, max_unavailable, max_surge
        self.pods: dict[str, Obj] = {}

    def on_pod(self, typ: str, pod: Obj) -> None:
        """Apply one watch event and check the invariants on the state after it."""
        uid = pod["metadata"]["uid"]
        if typ == "DELETED":
            self.pods.pop(uid, None)
        else:
            self.pods[uid] = pod
        if not self.updating:
            return
        alive: dict[str, list[Obj]] = {n: [] for n in self.nodes}
        for p in self.pods.values():
            node = p["spec"].get("nodeName")
            if node in alive and not p["metadata"].get("deletionTimestamp"):
                alive[node].append(p)
        down = [n for n, ps in alive.items() if not any(serving(p) for p in ps)]
        if len(down) > self.max_unavailable:
            self.violate(f"{len(down)} nodes without a Ready pod during the update ({', '.join(down[:5])}), "
                         f"maxUnavailable {self.max_unavailable}")
        surged = [n for n, ps in alive.items() if len(ps) > 1]
        if len(surged) > self.max_surge or any(len(alive[n]) > 2 for n in surged):
            self.violate(f"{len(surged)} nodes holding more than one pod during the update "
                         f"({', '.join(surged[:5])}), maxSurge {self.max_surge}")

    def final(self, new_image: str) -> None:
        """After the rollout: exactly one pod per node, Ready, of the new image."""
        for n in self.nodes:
            ps = [p for p in self.pods.values() if p["spec"].get("nodeName") == n]
            if len(ps) != 1 or not serving(ps[0]) or image_of(ps[0]) != new_image:
                self.violate(f"node {n} holds {len(ps)} pod(s) after the rollout, want one Ready pod of {new_image}")
        stray = [p["metadata"]["name"] for p in self.pods.values() if p["spec"].get("nodeName") not in self.nodes]
        if stray:
            self.violate(f"pods on no eligible node after the rollout: {stray[:5]}")


def resource(client: Client, group: str, plural: str) -> ResourceClient:
    """The client for a served v1 resource (the bench only asks for kinds the server serves)."""
    info = lookup(group, "v1", plural)
    assert info is not None, f"{group}/v1 {plural} not served"
    return client.resource(info)


async def wait_status(client: Client, plural: str, ns: str, name: str, done: Callable[[Obj, Obj], bool],
                      poll: float = 0.05) -> float:
    """Poll an apps/v1 object until done(status, object); return when (monotonic)."""
    res = resource(client, "apps", plural)
    while True:
        obj = await res.get(name, ns)
        if done(obj.get("status") or {}, obj):
            return time.monotonic()
        await asyncio.sleep(poll)


def statefulset(replicas: int, pod_management: str) -> Obj:
    """The benchmark's StatefulSet (RollingUpdate, maxUnavailable 1)."""
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": NAME},
            "spec": {"replicas": replicas, "serviceName": NAME, "podManagementPolicy": pod_management,
                     "selector": {"matchLabels": {"app": NAME}},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": NAME}},
                                  "spec": {"containers": [{"name": CONTAINER, "image": rb.V1}]}}}}


def daemonset(max_unavailable: int, max_surge: int) -> Obj:
    """The benchmark's DaemonSet (RollingUpdate with the given bounds)."""
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": NAME},
            "spec": {"selector": {"matchLabels": {"app": NAME}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": max_surge}},
                     "template": {"metadata": {"labels": {"app": NAME}},
                                  "spec": {"containers": [{"name": CONTAINER, "image": rb.V1}]}}}}


@dataclass
class Scenario:
    """One workload run: what to create, how to start it, when it is up and rolled out."""

    kind: str           # "statefulset" | "daemonset"
    label: str          # e.g. "StatefulSet OrderedReady"
    replicas: int       # pods expected when settled
    plural: str
    invariants: StatefulSetInvariants | DaemonSetInvariants
    objects: list[Obj] = field(default_factory=list)
    scale_to: int | None = None  # StatefulSet: `kubectl scale` to this after creating with 0


async def run(srv: Any, sc: Scenario, ns: str, settle: float = 120.0,
              timeout: float = 900.0) -> tuple[list[tuple[str, float]], list[str]]:
    """Bring the workload up and roll it, timing each step; (results, violations)."""
    client = Client(srv.client_config())
    clock = rb.PodClock()
    cw = rb.ClusterWatch()
    inv = sc.invariants
    n = sc.replicas

    def on_pod(typ: str, pod: Obj, now: float) -> None:
        clock.see(typ, pod, now)
        cw.on_pod(typ, pod)
        inv.on_pod(typ, pod)
    stop = asyncio.Event()
    # The owner watch feeds ClusterWatch's orphan check (keyed by the controller's uid).
    tasks = [asyncio.create_task(rb.watch(client, "", "pods", ns, on_pod)),
             asyncio.create_task(rb.watch(client, "apps", sc.plural, ns, lambda t, o, _: cw.on_rs(t, o))),
             asyncio.create_task(rb.watch(client, "", "nodes", "", lambda t, o, _: cw.on_node(o))),
             asyncio.create_task(rb.checker(cw, stop))]
    results: list[tuple[str, float]] = []
    what = "Ready pods" if sc.kind == "statefulset" else "nodes"
    try:
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        for obj in sc.objects:
            group = "apps" if obj["apiVersion"] == "apps/v1" else ""
            plural = {"Service": "services"}.get(obj["kind"], sc.plural)
            await resource(client, group, plural).create(obj, ns)
        if sc.scale_to is not None:
            t0 = time.monotonic()
            await asyncio.to_thread(rb.kubectl, srv, "-n", ns, "scale", f"{sc.kind}/{NAME}", f"--replicas={n}")

        def up(st: Obj, obj: Obj) -> bool:
            if sc.kind == "statefulset":
                return bool(st.get("readyReplicas") == n)
            return bool(st.get("desiredNumberScheduled") == st.get("numberReady") == n)
        t_up = await asyncio.wait_for(wait_status(client, sc.plural, ns, NAME, up), timeout)
        step = f"scale 0 → {n}: all Ready" if sc.scale_to is not None else f"create: a Ready pod on each of {n} nodes"
        results.append((step, t_up - t0))
        print(f"{sc.label}: {step}: {results[-1][1]:.2f} s", flush=True)
        up_rows = clock.phase_rows(rb.V1, t0, ("created", "bound", "started", "ready"))

        inv.updating = True
        t1 = time.monotonic()
        await asyncio.to_thread(rb.kubectl, srv, "-n", ns, "set", "image", f"{sc.kind}/{NAME}", f"{CONTAINER}={rb.V2}")

        def rolled(st: Obj, obj: Obj) -> bool:
            if st.get("observedGeneration", 0) < obj["metadata"]["generation"]:
                return False
            if sc.kind == "statefulset":
                return bool(st.get("updatedReplicas") == st.get("readyReplicas") == n
                            and st.get("updateRevision") == st.get("currentRevision"))
            return bool(st.get("updatedNumberScheduled") == st.get("numberAvailable") == st.get("desiredNumberScheduled") == n)
        t_rolled = await asyncio.wait_for(wait_status(client, sc.plural, ns, NAME, rolled), timeout)
        results.append((f"roll {n} v1 → v2: rolled out", t_rolled - t1))
        print(f"{sc.label}: {results[-1][0]}: {results[-1][1]:.2f} s", flush=True)
        if await rb.wait_settled(cw, n, settle):
            results.append((f"roll {n}: every old pod deleted", time.monotonic() - t1))
        else:
            cw.violate("settle", "", f"not settled {settle:.0f} s after the rollout: {len(cw.pods)} pods for {n} {what}")
        cw.check(time.monotonic())
        inv.final(rb.V2)
        roll_rows = (clock.phase_rows(rb.V2, t1, ("created", "bound", "started", "ready"))
                     + clock.phase_rows(rb.V1, t1, ("deleted",)))
    except TimeoutError:
        cw.check(time.monotonic())
        phase = "rollout" if inv.updating else "bring-up"
        cw.violate("timeout", phase, f"the {phase} did not finish within {timeout:.0f} s")
        return results, cw.violations + inv.violations
    finally:
        stop.set()
        for t in tasks[:3]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()

    def fmt(rows: list[tuple[str, int, float, float, float]]) -> list[tuple[str, ...]]:
        return [(m, str(k), f"{a:.2f}", f"{b:.2f}", f"{c:.2f}") for m, k, a, b, c in rows]
    header = ["milestone", "pods", "first", "p50", "last"]
    start = "`kubectl scale`" if sc.scale_to is not None else "the create"
    rb.print_table(f"{sc.label}: milestones of the bring-up (s after {start})", header, fmt(up_rows))
    rb.print_table(f"{sc.label}: milestones of the rollout (s after `kubectl set image`): new pods, then old pods "
                   "deleted", header, fmt(roll_rows))
    return results, cw.violations + inv.violations


def scenario(kind: str, replicas: int, nodes: list[str], pod_management: str = "OrderedReady",
             max_surge: int = 0) -> Scenario:
    """The Scenario for one --kind and its options."""
    if kind == "statefulset":
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME},
               "spec": {"clusterIP": "None", "selector": {"app": NAME}, "ports": [{"port": 8080}]}}
        return Scenario(kind, f"StatefulSet {pod_management}", replicas, "statefulsets",
                        StatefulSetInvariants(replicas, pod_management == "OrderedReady", rb.V1),
                        [svc, statefulset(0, pod_management)], scale_to=replicas)
    # maxSurge needs maxUnavailable 0 (the API refuses both non-zero), so the surge variant is 0/1.
    unavailable = 0 if max_surge else 1
    return Scenario(kind, f"DaemonSet maxUnavailable {unavailable} maxSurge {max_surge}", len(nodes), "daemonsets",
                    DaemonSetInvariants(nodes, unavailable, max_surge), [daemonset(unavailable, max_surge)])


def ready_nodes(srv: Any) -> list[str]:
    """Names of the Ready nodes."""
    return sorted(n["metadata"]["name"] for n in srv.kjson("get", "nodes")["items"]
                  if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or []))


def report(sc: Scenario, nodes: int, results: list[tuple[str, float]], violations: list[str]) -> bool:
    """Print the summary table and the verdict; True when every invariant held."""
    size = f"{sc.replicas} replicas" if sc.kind == "statefulset" else f"{sc.replicas} pods"
    rb.print_table(f"kubelite {sc.label} bench: {size}, {nodes} node(s), fake runtime (start delay 0.5 s), "
                   f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
                   ["step", "seconds"], [(m, f"{s:.2f}") for m, s in results])
    if violations:
        print(f"\nFAILED: {len(violations)} invariant violation(s):", file=sys.stderr)
        for v in violations:
            print(f"  - {v}", file=sys.stderr)
        return False
    print(f"\ninvariants held ({sc.label}): rollout order and bounds, nothing stuck Terminating, orphaned, "
          "over capacity or double-counted")
    return True


def main() -> None:
    """Command line: one scenario on a fresh fake-runtime cluster."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=("statefulset", "daemonset"), required=True)
    ap.add_argument("--replicas", type=int, default=100, help="StatefulSet replicas (default 100)")
    ap.add_argument("--nodes", type=int, default=0,
                    help="nodes in all, the server's own plus joined fake agents (default: 100 for a DaemonSet; "
                         "enough for the replicas at 110 pods a node for a StatefulSet)")
    ap.add_argument("--pod-management", choices=("OrderedReady", "Parallel"), default="OrderedReady")
    ap.add_argument("--max-surge", type=int, choices=(0, 1), default=0,
                    help="DaemonSet: 1 rolls with maxSurge 1 and maxUnavailable 0 (default: maxUnavailable 1)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--settle", type=float, default=120.0)
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()
    if not args.nodes:
        args.nodes = 100 if args.kind == "daemonset" else -(-args.replicas // 110)
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-bench-"))
    srv = start_server(tmp, "--runtime", "fake")
    agents: list[subprocess.Popen] = []
    ok = False
    try:
        agents, joined = rb.join_fake_nodes(srv, tmp, args.nodes)
        print(f"{args.nodes} nodes Ready in {joined:.1f} s", flush=True)
        rb.kubectl(srv, "create", "namespace", "bench")
        sc = scenario(args.kind, args.replicas, ready_nodes(srv), args.pod_management, args.max_surge)
        results, violations = asyncio.run(run(srv, sc, "bench", settle=args.settle, timeout=args.timeout))
        ok = report(sc, args.nodes, results, violations)
    finally:
        rb.tear_down(srv, agents, tmp, keep=args.keep)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
