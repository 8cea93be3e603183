"""Benchmark: how fast the scheduler binds pods created directly (issue 16: 1,000 pods all
bound in ≤ 1 s). Not run by CI.

A `kubelite server --runtime fake --disable scheduler,agent` with N Ready Node objects the
bench creates itself (no agent: nothing starts the pods, so the server's work is the binds
alone), or with `--agent` one `kubelite agent --node-count N --runtime fake` that also runs
the bound pods. The scheduler runs in this process, over the same HTTPS API path as the
server's own, so the server's CPU time (from /proc) is the API side and this process's CPU
time is the scheduler's (and the bench's watch).

- ``--mode before`` (default): all pods are created first, then the scheduler starts; the time
  is from its start to the last pod seen bound (over a watch).
- ``--mode concurrent``: the scheduler runs while the pods are created; the time is from the
  first create to the last pod bound.

    python bench/bind.py [--pods 1000] [--nodes 10] [--mode before|concurrent] [--profile FILE]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The scheduler must come from the same kubelite as the server, which `python -m
# kubelite.cli` takes from the current directory (not an installed copy).
sys.path.insert(0, os.getcwd())

import procstat  # (bench/ is the script's directory, first on sys.path)
from pods import print_profile, start_server, stop_server, wait_nodes

from kubelite.api.resources import NAMESPACES, NODES, PODS
from kubelite.client.rest import Client, ClientConfig
from kubelite.scheduler.scheduler import Scheduler

os.environ["KUBELITE_OFFLINE"] = "1"


def start_agent(data: Path, kubeconfig: Path, nodes: int) -> subprocess.Popen:
    """One `kubelite agent --runtime fake --node-count nodes` joined to the server at data."""
    import yaml
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    token = (data / "tls" / "tokens.csv").read_text().splitlines()[0].split(",")[0]
    with open(data.parent / "agent.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "kubelite.cli", "agent", "--server", server, "--token", token,
             "--ca-file", str(data / "tls" / "ca.crt"), "--node-name", "bind", "--node-ip", "127.0.0.20",
             "--runtime", "fake", "--node-count", str(nodes), "--data-dir", str(data.parent / "agent")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def create_nodes(kubeconfig: Path, count: int) -> None:
    """count Ready Node objects with room for 110 pods each (no agent behind them)."""
    client = Client(ClientConfig.from_kubeconfig(str(kubeconfig)))
    try:
        for i in range(1, count + 1):
            await client.resource(NODES).create({
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": f"bind-{i:03d}"},
                "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                           "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                           "conditions": [{"type": "Ready", "status": "True"}]}})
    finally:
        await client.close()


def _pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "bind"}},
            "spec": {"containers": [{"name": "app", "image": "registry.local/bench:1"}],
                     "terminationGracePeriodSeconds": 1}}


async def run(kubeconfig: Path, server_pid: int, n: int, concurrency: int, mode: str,
              spy_path: Path | None) -> dict:
    """Create n pods and schedule them; the times and CPU seconds of the binding phase."""
    client = Client(ClientConfig.from_kubeconfig(str(kubeconfig)))
    sched_client = Client(ClientConfig.from_kubeconfig(str(kubeconfig), user_agent="bench-scheduler"))
    ns = "bench"
    await client.resource(NAMESPACES).create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    pods = client.resource(PODS)
    rv = (await pods.list(ns))["metadata"]["resourceVersion"]
    bound: dict[str, float] = {}
    all_bound = asyncio.Event()

    async def watch() -> None:
        nonlocal rv
        while not all_bound.is_set():
            async for kind, p in pods.watch(ns, resource_version=rv, timeout_seconds=300):
                rv = p["metadata"].get("resourceVersion", rv)
                if kind != "BOOKMARK" and p["spec"].get("nodeName"):
                    bound.setdefault(p["metadata"]["name"], time.monotonic())
                    if len(bound) == n:
                        all_bound.set()
                        return

    sem = asyncio.Semaphore(concurrency)

    async def create(i: int) -> None:
        async with sem:
            await pods.create(_pod(f"p{i:05d}"), ns)

    watcher = asyncio.create_task(watch())
    stop = asyncio.Event()
    sched = Scheduler(sched_client)
    r: dict = {"n": n}
    if mode == "before":
        await asyncio.gather(*(create(i) for i in range(n)))
    spy = procstat.Spy(server_pid, spy_path, rate=250) if spy_path else None
    cpu0, own0, t0 = procstat.cpu_seconds(server_pid), time.process_time(), time.monotonic()
    task = asyncio.create_task(sched.run(stop))
    if mode == "concurrent":
        await asyncio.gather(*(create(i) for i in range(n)))
        r["created"] = time.monotonic() - t0
    try:
        await asyncio.wait_for(all_bound.wait(), timeout=max(120, n / 5))
    finally:
        r["server_cpu"] = procstat.cpu_seconds(server_pid) - cpu0
        r["bench_cpu"] = time.process_time() - own0
        r["span"] = (max(bound.values()) - t0) if bound else float("nan")
        r["bound"] = len(bound)
        if spy:
            spy.stop()
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await sched_client.close()
        await client.close()
    return r


def main() -> None:
    """Run one measurement and print it."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=20, help="creates in flight")
    ap.add_argument("--agent", action="store_true", help="real fake-runtime nodes that also start the pods")
    ap.add_argument("--mode", choices=("before", "concurrent"), default="before")
    ap.add_argument("--profile", metavar="PATH", type=Path,
                    help="record the server with py-spy into PATH (collapsed stacks) while binding")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-bind-") as tmp:
        data = Path(tmp) / "data"
        proc, kc = start_server(data, "--runtime", "fake", "--disable", "scheduler,agent")
        agent = start_agent(data, kc, args.nodes) if args.agent else None
        try:
            if agent is None:
                asyncio.run(create_nodes(kc, args.nodes))
            asyncio.run(wait_nodes(kc, args.nodes))
            load0 = procstat.load_average()
            r = asyncio.run(run(kc, proc.pid, args.pods, args.concurrency, args.mode, args.profile))
        finally:
            if agent is not None:
                stop_server(agent)
            stop_server(proc)
    n = r["n"]
    print(f"{r['bound']} of {n} pods bound over {args.nodes} fake nodes ({args.mode}): {r['span']:.2f} s, "
          f"{r['bound'] / r['span']:.0f} pods/s" + (f" (created in {r['created']:.2f} s)" if "created" in r else ""))
    print(f"server CPU {r['server_cpu']:.2f} s = {r['server_cpu'] / n * 1000:.2f} ms per bound pod; "
          f"scheduler process (this one) {r['bench_cpu']:.2f} s = {r['bench_cpu'] / n * 1000:.2f} ms per pod")
    import kubelite
    print(f"kubelite from {Path(kubelite.__file__).parent.parent}")
    print(f"load average before / after: {load0} / {procstat.load_average()}")
    if args.profile:
        print_profile(args.profile)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
