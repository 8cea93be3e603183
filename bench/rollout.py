"""Benchmark: scale a Deployment 0 → N on the fake runtime, then roll all N to a new image.

Everything goes through the real API of a fresh `kubelite server --runtime fake` (plus
`--nodes K-1` joined `kubelite agent --runtime fake` processes). A watch on the pods
records when each pod was created, bound and became Ready, so the table says where the
time goes (controller creating pods, scheduler binding them, agents starting them,
status writes). Not run by CI:

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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # tests/nodeharness imports conftest by name

from kubelite.api.resources import lookup  # noqa: E402
from kubelite.client.rest import Client  # noqa: E402
from tests.conftest import start_server  # noqa: E402
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


class PodClock:
    """Per-pod milestones seen on a watch: created, bound to a node, Ready."""

    def __init__(self):
        self.created: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.image: dict[str, str] = {}

    def see(self, pod: dict, now: float) -> None:
        uid = pod["metadata"]["uid"]
        self.created.setdefault(uid, now)
        self.image.setdefault(uid, pod["spec"]["containers"][0]["image"])
        if pod["spec"].get("nodeName"):
            self.bound.setdefault(uid, now)
        if any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []):
            self.ready.setdefault(uid, now)

    def phase_rows(self, image: str, t0: float) -> list[tuple[str, float, float, float]]:
        """(milestone, first, p50, last) seconds after t0 for the pods of one image."""
        uids = [u for u, i in self.image.items() if i == image]
        rows = []
        for name, d in (("created", self.created), ("bound", self.bound), ("ready", self.ready)):
            ts = [d[u] - t0 for u in uids if u in d]
            rows.append((name, min(ts, default=float("nan")), pct(ts, 0.5), max(ts, default=float("nan"))))
        return rows


async def watch_pods(client: Client, ns: str, clock: PodClock) -> None:
    pods = client.resource(lookup("", "v1", "pods"))
    listed = await pods.list(ns)
    now = time.monotonic()
    for p in listed["items"]:
        clock.see(p, now)
    rv = listed["metadata"]["resourceVersion"]
    while True:
        async for typ, obj in pods.watch(ns, resource_version=rv):
            if typ == "BOOKMARK":
                rv = obj["metadata"]["resourceVersion"]
                continue
            rv = obj["metadata"]["resourceVersion"]
            if typ != "DELETED":
                clock.see(obj, time.monotonic())


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


async def bench(srv, replicas: int, ns: str = "bench") -> list[tuple[str, float]]:
    client = Client(srv.client_config())
    clock = PodClock()
    watcher = asyncio.create_task(watch_pods(client, ns, clock))
    results: list[tuple[str, float]] = []
    try:
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        await asyncio.to_thread(kubectl, srv, "-n", ns, "scale", "deployment/web", f"--replicas={replicas}")
        t_ready = await wait_deployment(client, ns, "web", lambda st, d: st.get("readyReplicas") == replicas)
        results.append((f"scale 0 → {replicas}: all Ready", t_ready - t0))
        print(f"{results[-1][0]}: {results[-1][1]:.2f} s", flush=True)
        scale_rows = clock.phase_rows(V1, t0)

        t1 = time.monotonic()
        await asyncio.to_thread(kubectl, srv, "-n", ns, "set", "image", "deployment/web",
                                f"kubernetes-bootcamp={V2}")

        def rolled(st, d):
            return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
                    and st.get("updatedReplicas") == st.get("replicas") == st.get("availableReplicas") == replicas)
        t_rolled = await wait_deployment(client, ns, "web", rolled)
        results.append((f"roll {replicas} v1 → v2: rolled out", t_rolled - t1))
        roll_rows = clock.phase_rows(V2, t1)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await client.close()
    print_table("Milestones of the scale-up (s after `kubectl scale`)", ["milestone", "first", "p50", "last"],
                [(n, f"{a:.2f}", f"{b:.2f}", f"{c:.2f}") for n, a, b, c in scale_rows])
    print_table("Milestones of the new pods in the rollout (s after `kubectl set image`)",
                ["milestone", "first", "p50", "last"],
                [(n, f"{a:.2f}", f"{b:.2f}", f"{c:.2f}") for n, a, b, c in roll_rows])
    return results


def print_table(title: str, header: list[str], rows: list[tuple]) -> None:
    """A plain fixed-width table."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for j, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=0,
                    help="nodes in all, the server's own plus joined agents (default: enough for replicas + "
                         "25%% surge at 110 pods a node)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    args.nodes = args.nodes or -(-args.replicas * 5 // 4 // 110) + 1
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-bench-"))
    srv = start_server(tmp, "--runtime", "fake")
    agents: list[subprocess.Popen] = []
    try:
        for i in range(1, args.nodes):
            agents.append(start_agent(srv, tmp, f"fake-{i:03d}", f"127.0.{1 + i // 250}.{1 + i % 250}"))
        srv.wait_for(lambda: sum(
            any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or [])
            for n in srv.kjson("get", "nodes")["items"]) == args.nodes, timeout=120, interval=0.5,
            what=f"{args.nodes} Ready nodes")
        kubectl(srv, "create", "namespace", "bench")
        kubectl(srv, "-n", "bench", "create", "deployment", "web", f"--image={V1}", "--replicas=0")
        results = asyncio.run(bench(srv, args.replicas))
        print_table(f"kubelite rollout bench: {args.replicas} replicas, {args.nodes} node(s), fake runtime "
                    f"(start delay 0.5 s), Python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
                    ["step", "seconds"], [(n, f"{s:.2f}") for n, s in results])
    finally:
        for a in agents:
            stop_proc(a)
        srv.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"data and logs kept in {tmp}")


if __name__ == "__main__":
    main()
