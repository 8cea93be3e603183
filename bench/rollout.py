"""Benchmark and invariant run: scale a Deployment 0 → N on the fake runtime, then roll
all N to a new image.

Everything goes through the real API of a fresh `kubelite server --runtime fake` (plus
K-1 fake nodes joined by `kubelite agent --runtime fake --node-count` processes, 25 nodes
to a process). A watch on the pods records when each pod was created, bound, started
(Running), became Ready and, for the old pods of the rollout, was deleted, so the tables
say where the time goes (controller creating pods, scheduler binding them, agents starting
them, status writes, deletion).

The same watches (pods, ReplicaSets, nodes) check the cluster as it works, and the run
fails loudly (a message per violation, exit status 1) when
- a pod stays Terminating past its deletionTimestamp (the grace period) plus the
  drain wait and some slack;
- a pod's controlling ReplicaSet is gone and the pod is still there after a while
  (orphaned: the garbage collector missed it);
- the scheduler leaves pods Pending as "Too many pods" while nodes have free slots (it
  counts pods twice, or pods that are gone);
- a node holds more active pods than its allocatable pods;
- the rollout breaks maxSurge / maxUnavailable (tests/invariants.py);
- the cluster has not settled (N pods, none Terminating, no orphans) after the rollout.
Not run by CI:

    python bench/rollout.py                       # 1,000 replicas over 13 nodes
    python bench/rollout.py --replicas 10000 --nodes 100
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# tests/nodeharness imports conftest by name; bench/ for procstat when loaded as a module (tests)
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import procstat  # noqa: E402

from kubelite.api import meta, quantity  # noqa: E402
from kubelite.api.resources import lookup  # noqa: E402
from kubelite.client.rest import Client  # noqa: E402
from kubelite.node.podworker import DRAIN_WAIT_MAX  # noqa: E402
from tests.conftest import Server, start_server  # noqa: E402
from tests.invariants import RolloutInvariants  # noqa: E402
from tests.nodeharness import start_agent, stop_proc  # noqa: E402

# The network rule: a benchmark never contacts a registry off this machine, nor resolves its name.
os.environ["KUBELITE_OFFLINE"] = "1"

V1 = "jocatalin/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"


def pct(xs: list[float], q: float) -> float:
    """The q-quantile of xs (nearest rank)."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def is_ready(pod: dict) -> bool:
    """The Ready condition is True."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


class PodClock:
    """Per-pod milestones seen on a watch: created, bound to a node, Running, Ready, deleted."""

    MILESTONES = ("created", "bound", "started", "ready", "deleted")

    def __init__(self):
        self.at: dict[str, dict[str, float]] = {m: {} for m in self.MILESTONES}
        self.image: dict[str, str] = {}

    def see(self, typ: str, pod: dict, now: float) -> None:
        uid = pod["metadata"]["uid"]
        self.at["created"].setdefault(uid, now)
        self.image.setdefault(uid, pod["spec"]["containers"][0]["image"])
        if typ == "DELETED":
            self.at["deleted"].setdefault(uid, now)
            return
        if pod["spec"].get("nodeName"):
            self.at["bound"].setdefault(uid, now)
        if (pod.get("status") or {}).get("phase") == "Running":
            self.at["started"].setdefault(uid, now)
        if is_ready(pod):
            self.at["ready"].setdefault(uid, now)

    def phase_rows(self, image: str, t0: float, milestones: tuple[str, ...]) -> list[tuple[str, int, float, float, float]]:
        """(milestone, pods, first, p50, last) seconds after t0 for the pods of one image."""
        uids = [u for u, i in self.image.items() if i == image]
        rows = []
        for name in milestones:
            d = self.at[name]
            ts = [d[u] - t0 for u in uids if u in d and d[u] >= t0]
            rows.append((name, len(ts), min(ts, default=float("nan")), pct(ts, 0.5), max(ts, default=float("nan"))))
        return rows


# How long past its deletionTimestamp a pod may still exist: the agent's drain wait before
# the grace period, plus slack for a busy machine.
TERMINATING_SLACK = DRAIN_WAIT_MAX + 15.0
ORPHAN_GRACE = 30.0    # the garbage collector's time to remove a pod whose ReplicaSet is gone
PHANTOM_GRACE = 20.0   # "Too many pods" while slots are free, for this long, is a phantom


class ClusterWatch:
    """The namespace's pods and ReplicaSets and the nodes, as the watches show them; the
    invariants checked on them (``violations``, one line each, reported once)."""

    def __init__(self) -> None:
        self.pods: dict[str, dict] = {}       # uid -> latest
        self.replicasets: dict[str, dict] = {}
        self.capacity: dict[str, int] = {}    # node -> allocatable pods
        self.violations: list[str] = []
        self._reported: set[tuple[str, str]] = set()
        self._orphaned_since: dict[str, float] = {}
        self._phantom_since: float | None = None
        self.rollout: RolloutInvariants | None = None

    def violate(self, kind: str, key: str, message: str) -> None:
        if (kind, key) not in self._reported:
            self._reported.add((kind, key))
            self.violations.append(message)
            print(f"INVARIANT VIOLATED: {message}", flush=True)

    def on_pod(self, typ: str, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        if typ == "DELETED":
            self.pods.pop(uid, None)
            self._orphaned_since.pop(uid, None)
        else:
            self.pods[uid] = pod

    def on_rs(self, typ: str, rs: dict) -> None:
        if typ == "DELETED":
            self.replicasets.pop(rs["metadata"]["uid"], None)
        else:
            self.replicasets[rs["metadata"]["uid"]] = rs

    def on_node(self, node: dict) -> None:
        alloc = (node.get("status") or {}).get("allocatable") or {}
        self.capacity[node["metadata"]["name"]] = quantity.value(alloc.get("pods", "110"))

    def check(self, mono: float) -> None:
        """Every invariant on the current state (``mono``: time.monotonic())."""
        wall = time.time()
        per_node: dict[str, int] = {}
        pending_full: list[str] = []
        for uid, p in self.pods.items():
            md, spec, st = p["metadata"], p.get("spec") or {}, p.get("status") or {}
            node = spec.get("nodeName")
            if node and st.get("phase") not in ("Succeeded", "Failed"):
                per_node[node] = per_node.get(node, 0) + 1
            if md.get("deletionTimestamp"):
                ts = meta.parse_time(md["deletionTimestamp"])
                if ts is not None and wall > ts.timestamp() + TERMINATING_SLACK:
                    self.violate("terminating", uid, f"pod {md['name']} Terminating {wall - ts.timestamp():.0f} s "
                                 f"past its deletionTimestamp (grace period), node {node or '-'}")
            owner = next((r for r in md.get("ownerReferences") or [] if r.get("controller")), None)
            if owner is not None and owner["uid"] not in self.replicasets:
                since = self._orphaned_since.setdefault(uid, mono)
                if mono - since > ORPHAN_GRACE:
                    self.violate("orphan", uid, f"pod {md['name']} ({st.get('phase')}) still there {mono - since:.0f} s "
                                 f"after its ReplicaSet {owner.get('name')} was gone")
            else:
                self._orphaned_since.pop(uid, None)
            if not node and not md.get("deletionTimestamp"):
                cond = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
                if cond and cond.get("status") == "False" and "Too many pods" in (cond.get("message") or ""):
                    pending_full.append(md["name"])
        for node, n in per_node.items():
            cap = self.capacity.get(node)
            if cap is not None and n > cap:
                self.violate("capacity", f"{node}/{n}", f"node {node} holds {n} active pods, allocatable {cap}")
        free = sum(max(0, cap - per_node.get(node, 0)) for node, cap in self.capacity.items())
        # Pods of other namespaces also take slots: only this namespace's pods are watched,
        # so the bench runs in a cluster holding nothing else.
        if pending_full and free > 0:
            if self._phantom_since is None:
                self._phantom_since = mono
            elif mono - self._phantom_since > PHANTOM_GRACE:
                self.violate("phantom", str(int(self._phantom_since)),
                             f"{len(pending_full)} pods Pending as 'Too many pods' for {mono - self._phantom_since:.0f} s "
                             f"while {free} slots are free (the scheduler counts pods that are not there)")
        else:
            self._phantom_since = None
        if self.rollout is not None:
            before = len(self.rollout.violations)
            self.rollout.check(self.pods.values())
            for v in self.rollout.violations[before:]:
                self.violate("rollout", v, f"rolling update bound broken: {v}")

    def settled(self, replicas: int) -> bool:
        """Exactly ``replicas`` pods, all Ready, none Terminating, none orphaned."""
        pods = list(self.pods.values())
        return (len(pods) == replicas and all(is_ready(p) and not p["metadata"].get("deletionTimestamp") for p in pods)
                and not self._orphaned_since)


async def watch(client: Client, group: str, plural: str, ns: str, on_event) -> None:
    """List then watch one resource forever, calling on_event(type, object, monotonic time)."""
    res = client.resource(lookup(group, "v1", plural))
    while True:
        listed = await res.list(ns)
        now = time.monotonic()
        for obj in listed["items"]:
            on_event("ADDED", obj, now)
        rv = listed["metadata"]["resourceVersion"]
        try:
            while True:
                async for typ, obj in res.watch(ns, resource_version=rv):
                    rv = obj["metadata"]["resourceVersion"]
                    if typ != "BOOKMARK":
                        on_event(typ, obj, time.monotonic())
        except Exception as e:  # a dropped or expired watch: list again
            print(f"(watch {plural} restarted: {e})", flush=True)


async def wait_settled(cw, n: int, settle: float) -> bool:
    """Poll, for at most ``settle`` seconds, until the cluster watch holds ``n`` settled pods."""
    for _ in range(int(settle / 0.2)):
        if cw.settled(n):
            return True
        await asyncio.sleep(0.2)
    return bool(cw.settled(n))


async def wait_deployment(client: Client, ns: str, name: str, done, poll: float = 0.05) -> float:
    """Poll the Deployment until done(status, deployment); return when (monotonic)."""
    deployments = client.resource(lookup("apps", "v1", "deployments"))
    while True:
        d = await deployments.get(name, ns)
        if done(d.get("status") or {}, d):
            return time.monotonic()
        await asyncio.sleep(poll)


def kubectl(srv, *args: str) -> None:
    srv.kubectl(*args, check=True, timeout=120)


async def checker(cw: ClusterWatch, stop: asyncio.Event) -> None:
    """Check the invariants a few times a second."""
    while not stop.is_set():
        cw.check(time.monotonic())
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def bench(srv, replicas: int, ns: str = "bench", settle: float = 120.0,
                timeout: float = 900.0) -> tuple[list[tuple[str, float]], list[str]]:
    client = Client(srv.client_config())
    clock = PodClock()
    cw = ClusterWatch()

    def on_pod(typ: str, pod: dict, now: float) -> None:
        clock.see(typ, pod, now)
        cw.on_pod(typ, pod)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(watch(client, "", "pods", ns, on_pod)),
             asyncio.create_task(watch(client, "apps", "replicasets", ns, lambda t, o, _: cw.on_rs(t, o))),
             asyncio.create_task(watch(client, "", "nodes", "", lambda t, o, _: cw.on_node(o))),
             asyncio.create_task(checker(cw, stop))]
    results: list[tuple[str, float]] = []
    cpu_rows: list[tuple[str, float]] = []
    deployments = client.resource(lookup("apps", "v1", "deployments"))
    try:
        await asyncio.sleep(0.2)
        cpu0 = procstat.tree_cpu_seconds(srv.proc.pid)
        t0 = time.monotonic()
        await asyncio.to_thread(kubectl, srv, "-n", ns, "scale", "deployment/web", f"--replicas={replicas}")
        t_ready = await asyncio.wait_for(
            wait_deployment(client, ns, "web", lambda st, d: st.get("readyReplicas") == replicas), timeout)
        results.append((f"scale 0 → {replicas}: all Ready", t_ready - t0))
        print(f"{results[-1][0]}: {results[-1][1]:.2f} s", flush=True)
        cpu1 = procstat.tree_cpu_seconds(srv.proc.pid)
        cpu_rows.append(("scale-up", cpu1 - cpu0))
        scale_rows = clock.phase_rows(V1, t0, ("created", "bound", "started", "ready"))

        cw.rollout = RolloutInvariants(await deployments.get("web", ns))
        t1 = time.monotonic()
        await asyncio.to_thread(kubectl, srv, "-n", ns, "set", "image", "deployment/web",
                                f"kubernetes-bootcamp={V2}")

        def rolled(st, d):
            return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
                    and st.get("updatedReplicas") == st.get("replicas") == st.get("availableReplicas") == replicas)
        t_rolled = await asyncio.wait_for(wait_deployment(client, ns, "web", rolled), timeout)
        results.append((f"roll {replicas} v1 → v2: rolled out", t_rolled - t1))
        print(f"{results[-1][0]}: {results[-1][1]:.2f} s", flush=True)
        cpu2 = procstat.tree_cpu_seconds(srv.proc.pid)
        cpu_rows.append(("rollout", cpu2 - cpu1))
        # The old pods' deletions may still be finishing: wait for a settled cluster.
        if await wait_settled(cw, replicas, settle):
            results.append((f"roll {replicas}: every old pod deleted", time.monotonic() - t1))
        else:
            left = [p["metadata"]["name"] for p in cw.pods.values() if p["metadata"].get("deletionTimestamp")]
            cw.violate("settle", "", f"not settled {settle:.0f} s after the rollout: {len(cw.pods)} pods for "
                       f"{replicas} replicas, {len(left)} Terminating (e.g. {left[:3]}), "
                       f"{len(cw._orphaned_since)} without their ReplicaSet")
        cw.check(time.monotonic())
        roll_rows = (clock.phase_rows(V2, t1, ("created", "bound", "started", "ready"))
                     + clock.phase_rows(V1, t1, ("deleted",)))
    except TimeoutError:
        cw.check(time.monotonic())
        phase = "rollout" if cw.rollout is not None else "scale-up"
        cw.violate("timeout", phase, f"the {phase} did not finish within {timeout:.0f} s")
        return results, cw.violations
    finally:
        stop.set()
        for t in tasks[:3]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()

    def fmt(rows):
        return [(n, str(k), f"{a:.2f}", f"{b:.2f}", f"{c:.2f}") for n, k, a, b, c in rows]
    header = ["milestone", "pods", "first", "p50", "last"]
    print_table("Milestones of the scale-up (s after `kubectl scale`)", header, fmt(scale_rows))
    print_table("Milestones of the rollout (s after `kubectl set image`): new pods, then old pods deleted",
                header, fmt(roll_rows))
    print_table(f"Server CPU (user + system, with its child processes; load average now {procstat.load_average()})",
                ["phase", "CPU s", "ms per replica"],
                [(name, f"{c:.2f}", f"{c / replicas * 1000:.1f}") for name, c in cpu_rows])
    return results, cw.violations


def print_table(title: str, header: list[str], rows: list[tuple]) -> None:
    """A plain fixed-width table."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for j, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


# Fake nodes simulated per `kubelite agent --node-count` process: a few processes use both
# cores, while a process per node would pay Python's start-up (about a second of CPU) each.
NODES_PER_PROCESS = 25


def ready_node_count(srv: Server) -> int:
    """How many nodes report Ready."""
    return sum(any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or [])
               for n in srv.kjson("get", "nodes")["items"])


def join_fake_nodes(srv: Server, tmp: Path, nodes: int, per_process: int = NODES_PER_PROCESS,
                    timeout: float = 120.0) -> tuple[list[subprocess.Popen], float]:
    """Join ``nodes - 1`` fake nodes to srv (the server's own is the first), ``per_process`` to a
    `kubelite agent` process, and wait until all ``nodes`` are Ready; (the processes, seconds).
    The caller stops the processes (also when this raises)."""
    agents: list[subprocess.Popen] = []
    t0 = time.monotonic()
    left, group = nodes - 1, 0
    while left > 0:
        n = min(per_process, left)
        # Group g's nodes are fake-gGG-001 … on 127.0.(g+1).1 and up.
        agents.append(start_agent(srv, tmp, f"fake-g{group:02d}", f"127.0.{group + 1}.1", "--node-count", str(n)))
        left -= n
        group += 1
    try:
        srv.wait_for(lambda: ready_node_count(srv) == nodes, timeout=timeout, interval=0.5,
                     what=f"{nodes} Ready nodes")
    except BaseException:
        for a in agents:
            stop_proc(a)
        raise
    return agents, time.monotonic() - t0


def tear_down(srv: Server, agents: list[subprocess.Popen], tmp: Path, *, keep: bool) -> None:
    """Stop the agents and the server; remove the data directory unless ``keep``."""
    for a in agents:
        stop_proc(a)
    srv.stop()
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"data and logs kept in {tmp}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=0,
                    help="nodes in all, the server's own plus joined agents (default: enough for replicas + "
                         "25%% surge at 110 pods a node)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--server-arg", action="append", default=[], metavar="FLAG",
                    help="one more `kubelite server` flag (repeatable), e.g. --server-arg=--separate-processes="
                         "controllers,scheduler")
    ap.add_argument("--profile", metavar="PATH", type=Path,
                    help="record the server with py-spy from the scale-up to the end into PATH (collapsed stacks)")
    ap.add_argument("--settle", type=float, default=120.0,
                    help="seconds the cluster gets after the rollout to delete every old pod (default 120)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds the scale-up and the rollout each get before the run fails (default 900)")
    args = ap.parse_args()
    failed = False
    args.nodes = args.nodes or -(-args.replicas * 5 // 4 // 110) + 1
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-bench-"))
    srv = start_server(tmp, "--runtime", "fake", *args.server_arg)
    agents: list[subprocess.Popen] = []
    try:
        agents, joined = join_fake_nodes(srv, tmp, args.nodes)
        print(f"{args.nodes} nodes Ready in {joined:.1f} s", flush=True)
        kubectl(srv, "create", "namespace", "bench")
        kubectl(srv, "-n", "bench", "create", "deployment", "web", f"--image={V1}", "--replicas=0")
        spy = procstat.Spy(srv.proc.pid, args.profile) if args.profile else None
        try:
            results, violations = asyncio.run(bench(srv, args.replicas, settle=args.settle, timeout=args.timeout))
        finally:
            if spy:
                spy.stop()
        if args.profile:
            own, cum = procstat.top_frames(args.profile)
            print_table("Server profile, top self", ["share", "frame"], [(f"{s * 100:.1f} %", f) for f, s in own])
            print_table("Server profile, top cumulative", ["share", "frame"],
                        [(f"{s * 100:.1f} %", f) for f, s in cum])
        print_table(f"kubelite rollout bench: {args.replicas} replicas, {args.nodes} node(s), fake runtime "
                    f"(start delay 0.5 s), Python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
                    ["step", "seconds"], [(n, f"{s:.2f}") for n, s in results])
        if violations:
            print(f"\nFAILED: {len(violations)} invariant violation(s):", file=sys.stderr)
            for v in violations:
                print(f"  - {v}", file=sys.stderr)
            failed = True
        else:
            print("\ninvariants held: nothing stuck Terminating, orphaned, over capacity or double-counted")
    finally:
        tear_down(srv, agents, tmp, keep=args.keep)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
