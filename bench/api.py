"""API server benchmark (not run by CI).

Starts its own `kubelite server` (API only, no controllers/scheduler/agent/proxy, so
nothing but the benchmark writes) on a free port in a temporary data directory, and:

1. cold start: process start → /readyz answers 200 (API-only, and the whole cluster);
2. creates/s and gets/s of small pods with the kubelite async client and a few
   concurrent tasks, with per-request p50/p99;
3. lists/s of 1,000 pods (one LIST of the namespace);
4. watch delivery latency: 100 watchers on one namespace, ConfigMaps created one at a
   time; time from sending the create to each watcher receiving its ADDED event;
5. server RSS (VmRSS of the server process) idle, and with 10,000 pods stored.

With ``--store etcd`` each server keeps its state in its own fresh etcd (Debian's
etcd-server, started on loopback ports in the temporary directory; one member, or a
cluster of ``--etcd-members`` N) instead of the embedded SQLite store.

    python bench/api.py [--store sqlite|etcd] [--etcd-members 1] [--concurrency 8] [--pods 1000] [--watchers 100] [--stored 10000]
    python bench/api.py --cold-only [--runs 5]    # the two cold-start rows alone
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import procstat  # bench/ is the script's directory, first on sys.path
from conftest import API_ONLY, start_server
from etcdkit import Etcd, start_etcd, start_etcd_cluster

from kubelite.api.resources import CONFIGMAPS, NAMESPACES, PODS, SERVICEACCOUNTS
from kubelite.client.rest import Client, ClientConfig

# The network rule: a benchmark never contacts a registry off this machine, nor resolves its name.
os.environ["KUBELITE_OFFLINE"] = "1"

NS = "bench"


def pod(name: str) -> dict:
    """A small pod, as `kubectl run` would make it."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}


def pct(xs: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of xs."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def per_pod(cpu: list[float], n: int) -> str:
    """CPU seconds of each measured process, as milliseconds per pod ("a / b ms")."""
    return " / ".join(f"{c * 1000 / max(n, 1):.2f}" for c in cpu) + " ms"


def rss_mib(pid: int) -> float:
    """VmRSS of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def timed_many(n: int, concurrency: int, one) -> tuple[float, list[float]]:
    """Run one(i) for i in range(n) on `concurrency` tasks; (wall seconds, per-call latencies)."""
    lat: list[float] = []
    nxt = iter(range(n))

    async def worker() -> None:
        for i in nxt:
            t0 = time.perf_counter()
            await one(i)
            lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, lat


async def crud(cfg: ClientConfig, n: int, concurrency: int, start: int = 0, pids: tuple[int, ...] = ()) -> dict:
    """Create n pods, get each once, then list them; rates and latencies, and the CPU seconds
    the processes ``pids`` (the server, etcd) spent on the creates and on the gets."""
    client = Client(cfg)
    pods = client.resource(PODS)

    def cpu() -> list[float]:
        return [procstat.cpu_seconds(p) for p in pids]
    try:
        c0 = cpu()
        wall_c, lat_c = await timed_many(n, concurrency, lambda i: pods.create(pod(f"p-{start + i}"), NS))
        c1 = cpu()
        wall_g, lat_g = await timed_many(n, concurrency, lambda i: pods.get(f"p-{start + i}", NS))
        c2 = cpu()
        lists = max(5, 20_000 // max(n, 1))
        wall_l, lat_l = await timed_many(lists, 1, lambda i: pods.list(NS))
        assert len((await pods.list(NS))["items"]) == start + n
    finally:
        await client.close()
    return {"create": (n / wall_c, lat_c), "get": (n / wall_g, lat_g), "list": (lists / wall_l, lat_l),
            "create_cpu": [b - a for a, b in zip(c0, c1, strict=True)],
            "get_cpu": [b - a for a, b in zip(c1, c2, strict=True)]}


async def fill(cfg: ClientConfig, n: int, start: int, concurrency: int = 16) -> float:
    """Create pods p-start … p-(start+n-1); returns creates/s."""
    client = Client(cfg)
    try:
        wall, _ = await timed_many(n, concurrency, lambda i: client.resource(PODS).create(pod(f"p-{start + i}"), NS))
    finally:
        await client.close()
    return n / wall


async def watch_latency(cfg: ClientConfig, watchers: int, events: int) -> list[float]:
    """Delivery latency of ADDED events to `watchers` concurrent watches."""
    # One connection per watch: spread them over clients (each pools at most 64 connections).
    clients = [Client(cfg) for _ in range((watchers + 49) // 50)]
    cms = clients[0].resource(CONFIGMAPS)
    rv = (await cms.list(NS))["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    lat: list[float] = []
    seen: list[asyncio.Event] = [asyncio.Event() for _ in range(watchers)]
    counts = [0] * watchers

    async def watcher(k: int) -> None:
        rc = clients[k % len(clients)].resource(CONFIGMAPS)
        async for typ, obj in rc.watch(NS, resource_version=rv, allow_bookmarks=False):
            now = time.perf_counter()
            name = obj["metadata"]["name"]
            if typ != "ADDED":
                continue
            if name == "sentinel":
                seen[k].set()
                continue
            lat.append(now - sent[name])
            counts[k] += 1
            if counts[k] == events:
                return

    tasks = [asyncio.create_task(watcher(k)) for k in range(watchers)]
    try:
        # The sentinel proves every watch is established before timing starts.
        await cms.create({"metadata": {"name": "sentinel"}, "data": {}}, NS)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in seen)), 60)
        for i in range(events):
            name = f"cm-{i}"
            sent[name] = time.perf_counter()
            await cms.create({"metadata": {"name": name}, "data": {"i": str(i)}}, NS)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in clients:
            await c.close()
    return lat


async def make_namespace(cfg: ClientConfig) -> None:
    """The benchmark's namespace with its ``default`` ServiceAccount, which the (disabled)
    ServiceAccount controller makes in every namespace of a running cluster."""
    client = Client(cfg)
    try:
        await client.resource(NAMESPACES).create({"metadata": {"name": NS}})
        await client.resource(SERVICEACCOUNTS).create({"metadata": {"name": "default"}}, NS)
    finally:
        await client.close()


def store_flags(store: str, tmp: Path, started: list[Etcd], members: int = 1) -> tuple[str, ...]:
    """The server flags for the chosen store (a fresh etcd of ``members`` members in ``tmp`` for etcd)."""
    if store != "etcd":
        return ()
    fresh = [start_etcd(tmp / "etcd")] if members == 1 else start_etcd_cluster(tmp / "etcd", members)
    started.extend(fresh)
    return ("--datastore-endpoint", ",".join(e.endpoint for e in fresh))


def cold_start(tmp: Path, *flags: str) -> float:
    t0 = time.perf_counter()
    srv = start_server(tmp, *flags)
    took = time.perf_counter() - t0
    srv.stop()
    return took


def load() -> str:
    """The 1-minute load average (a busy machine makes start-up times say little)."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def cold_only(console: Console, runs: int) -> None:
    """The cold-start rows alone: ``runs`` starts of each kind, alternating, in fresh directories."""
    api: list[float] = []
    full: list[float] = []
    loads = [load()]
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-api-") as tmpd:
        for i in range(runs):
            (Path(tmpd) / f"api{i}").mkdir()
            (Path(tmpd) / f"full{i}").mkdir()
            api.append(cold_start(Path(tmpd) / f"api{i}", *API_ONLY))
            full.append(cold_start(Path(tmpd) / f"full{i}"))
            loads.append(load())
    t = Table(title=f"kubelite cold start ({runs} run(s) each)", title_justify="left")
    t.add_column("measure")
    t.add_column("median", justify="right")
    t.add_column("min / max")
    for name, xs in (("cold start to /readyz, API only", api), ("cold start to /readyz, whole cluster", full)):
        t.add_row(name, f"{pct(xs, 50):.2f} s", f"{min(xs):.2f} s / {max(xs):.2f} s")
    console.print(t)
    console.print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; load average {', '.join(loads)} "
                  "(before and after each pair); cold start polls /readyz every 50 ms", style="grey50")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=["sqlite", "etcd"], default="sqlite",
                    help="the embedded SQLite store, or a one-member etcd per server (--datastore-endpoint)")
    ap.add_argument("--etcd-members", type=int, default=1, help="members of each etcd cluster (--store etcd)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--watch-events", type=int, default=50)
    ap.add_argument("--stored", type=int, default=10_000)
    ap.add_argument("--cold-only", action="store_true",
                    help="only the two cold-start rows (SQLite store), over --runs starts of each")
    ap.add_argument("--runs", type=int, default=1, help="cold starts of each kind with --cold-only (median, min, max)")
    args = ap.parse_args()
    console = Console()
    if args.cold_only:
        cold_only(console, max(1, args.runs))
        return

    etcds: list[Etcd] = []
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-api-") as tmpd:
        tmp = Path(tmpd)
        (tmp / "full").mkdir()
        console.print(f"cold start (whole cluster, {args.store})…")
        try:
            full = cold_start(tmp / "full", *store_flags(args.store, tmp / "full", etcds, args.etcd_members))
            (tmp / "api").mkdir()
            flags = store_flags(args.store, tmp / "api", etcds, args.etcd_members)
        except BaseException:
            for e in etcds:
                e.stop()
            raise
        t0 = time.perf_counter()
        srv = start_server(tmp / "api", *API_ONLY, *flags)
        api_cold = time.perf_counter() - t0
        try:
            time.sleep(1.0)
            idle = rss_mib(srv.proc.pid)
            cfg = srv.client_config()
            asyncio.run(make_namespace(cfg))
            console.print(f"create/get/list {args.pods} pods, concurrency {args.concurrency}…")
            load0 = procstat.load_average()
            pids = (srv.proc.pid, *([etcds[-1].proc.pid] if etcds and etcds[-1].proc else []))
            r = asyncio.run(crud(cfg, args.pods, args.concurrency, pids=pids))
            console.print(f"watch latency, {args.watchers} watchers × {args.watch_events} events…")
            lat_w = asyncio.run(watch_latency(cfg, args.watchers, args.watch_events))
            console.print(f"filling to {args.stored} pods…")
            fill_rate = asyncio.run(fill(cfg, max(0, args.stored - args.pods), args.pods))
            gc.collect()
            time.sleep(2.0)
            full_rss = rss_mib(srv.proc.pid)
            etcd_rss = rss_mib(etcds[-1].proc.pid) if etcds and etcds[-1].proc else 0.0
        finally:
            srv.stop()
            for e in etcds:
                e.stop()

    rows = [
        ("cold start to /readyz, API only", f"{api_cold:.2f} s", ""),
        ("cold start to /readyz, whole cluster", f"{full:.2f} s", ""),
        (f"pod creates ({args.concurrency} tasks)", f"{r['create'][0]:.0f} /s",
         f"p50 {ms(pct(r['create'][1], 50))}, p99 {ms(pct(r['create'][1], 99))}"),
        (f"pod gets ({args.concurrency} tasks)", f"{r['get'][0]:.0f} /s",
         f"p50 {ms(pct(r['get'][1], 50))}, p99 {ms(pct(r['get'][1], 99))}"),
        (f"list of {args.pods} pods", f"{r['list'][0]:.1f} /s",
         f"p50 {ms(pct(r['list'][1], 50))}, p99 {ms(pct(r['list'][1], 99))}"),
        (f"watch delivery, {args.watchers} watchers", f"{len(lat_w)} events",
         f"p50 {ms(pct(lat_w, 50))}, p99 {ms(pct(lat_w, 99))}, max {ms(max(lat_w))}"),
        (f"pod creates while filling to {args.stored} (16 tasks)", f"{fill_rate:.0f} /s", ""),
        ("CPU per pod create: server" + (" / etcd" if args.store == "etcd" else ""), per_pod(r["create_cpu"], args.pods), ""),
        ("CPU per pod get: server" + (" / etcd" if args.store == "etcd" else ""), per_pod(r["get_cpu"], args.pods), ""),
        ("server RSS, idle", f"{idle:.0f} MiB", ""),
        (f"server RSS, {args.stored} pods stored", f"{full_rss:.0f} MiB", ""),
    ]
    if args.store == "etcd":
        rows.append((f"etcd RSS, {args.stored} pods stored", f"{etcd_rss:.0f} MiB", ""))
    members = f", {args.etcd_members} members" if args.store == "etcd" else ""
    t = Table(title=f"kubelite API server ({args.store} store{members})", title_justify="left")
    t.add_column("measure")
    t.add_column("result", justify="right")
    t.add_column("latency / note")
    for row in rows:
        t.add_row(*row)
    console.print(t)
    console.print(f"python {sys.version.split()[0]}; one run over loopback; cold start polls /readyz every 50 ms; "
                  f"load average before the creates / at the end: {load0} / {procstat.load_average()}", style="grey50")


if __name__ == "__main__":
    main()
