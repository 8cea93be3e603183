"""Pod start-up benchmark (not run by CI).

1. latency: pods of the bootcamp image on a `kubelite server` with the process runtime;
   per pod, the time from the create request to phase Running and to condition Ready
   (p50 / p99 / max);
2. the same on the oci runtime (root, runc, conmon, catatonit), one create at a time and
   10 in flight, with the resident memory of each container's monitor (conmon); its
   containers outlive the server, so `kubelite killall` stops them at the end;
3. throughput: many pods through the scheduler and the fake runtime; pods/s created,
   bound and Running.

    python bench/pods.py [--latency-pods 40] [--oci-pods 20] [--fake-pods 500] [--concurrency 20]

Each part starts its own server in a temporary data directory and removes it after.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import procstat  # bench/ is the script's directory, first on sys.path
from rich.console import Console
from rich.table import Table

from kubelite.api.resources import NAMESPACES, PODS
from kubelite.client.rest import Client, ClientConfig

# The network rule: a benchmark never contacts a registry off this machine, nor resolves its name.
os.environ["KUBELITE_OFFLINE"] = "1"

BOOTCAMP = "gcr.io/google-samples/kubernetes-bootcamp:v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, *flags: str, verbose: bool = False) -> tuple[subprocess.Popen, Path]:
    """`kubelite server` on a free port; (process, kubeconfig path) once /readyz answers."""
    port = _free_port()
    data.parent.mkdir(parents=True, exist_ok=True)
    with open(data.parent / "server.log", "ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "kubelite.cli", *(["-v"] if verbose else []), "server",
                                 "--data-dir", str(data), "--api-port", str(port), *flags],
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    # Generous: on a shared 2-core machine under load a cold start can take tens of seconds.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        if (data / "kubeconfig").exists():
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=ctx, timeout=2):
                    return proc, data / "kubeconfig"
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server not ready in 120 s")


def join_fake_agents(data: Path, kubeconfig: Path, count: int) -> list[subprocess.Popen]:
    """`kubelite agent --runtime fake` nodes bench-1… (127.0.0.(10+i)) joined to the server at data."""
    import yaml
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    token = (data / "tls" / "tokens.csv").read_text().splitlines()[0].split(",")[0]
    procs = []
    for i in range(1, count + 1):
        with open(data.parent / f"agent-{i}.log", "ab") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "kubelite.cli", "agent", "--server", server, "--token", token,
                 "--ca-file", str(data / "tls" / "ca.crt"), "--node-name", f"bench-{i}",
                 "--node-ip", f"127.0.0.{10 + i}", "--runtime", "fake", "--data-dir", str(data.parent / f"agent-{i}")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


async def wait_nodes(kubeconfig: Path, count: int) -> None:
    """Until `count` nodes are Ready."""
    from kubelite.api.resources import NODES
    client = Client(ClientConfig.from_kubeconfig(str(kubeconfig)))
    try:
        for _ in range(600):
            items = (await client.resource(NODES).list())["items"]
            if sum(_ready(n) for n in items) >= count:
                return
            await asyncio.sleep(0.1)
        raise SystemExit(f"fewer than {count} Ready nodes after 60 s")
    finally:
        await client.close()


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _pod(name: str, ports: bool) -> dict:
    c: dict = {"name": "app", "image": BOOTCAMP}
    if ports:
        c["ports"] = [{"containerPort": 8080}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "pods"}},
            "spec": {"containers": [c], "terminationGracePeriodSeconds": 1}}


def _ready(p: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (p.get("status") or {}).get("conditions") or [])


def killall(data: Path) -> None:
    """`kubelite killall`: the oci runtime's containers outlive the server."""
    subprocess.run([sys.executable, "-m", "kubelite.cli", "killall", "--data-dir", str(data)],
                   capture_output=True, timeout=300)


def conmon_memory_kib(data: Path) -> list[dict[str, int]]:
    """Rss, Pss and private (Private_Clean + Private_Dirty) KiB, from smaps_rollup, of every
    conmon watching a container of the server on `data`. Pss is what one more monitor
    costs: the pages of its shared libraries are divided among all the processes mapping them."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if os.path.basename(argv[0]) != b"conmon" or str(data).encode() not in b" ".join(argv):
                continue
            fields = {}
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
                key, _, rest = line.partition(":")
                if rest.strip().endswith("kB"):
                    fields[key] = int(rest.split()[0])
            out.append({"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
                        "private": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)})
        except (OSError, ValueError):
            continue
    return out


async def run_pods(kubeconfig: Path, n: int, concurrency: int, ports: bool, ns: str = "bench",
                   one_by_one: bool = False) -> dict:
    """Create n pods (at most `concurrency` requests in flight; with `one_by_one`, each only
    once the one before is Ready) and time each one's progress."""
    client = Client(ClientConfig.from_kubeconfig(str(kubeconfig)))
    await client.resource(NAMESPACES).create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    pods = client.resource(PODS)
    rv = (await pods.list(ns))["metadata"]["resourceVersion"]
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    running: dict[str, float] = {}
    ready: dict[str, float] = {}
    all_ready = asyncio.Event()
    ready_event: dict[str, asyncio.Event] = {}

    async def watch() -> None:
        nonlocal rv
        while not all_ready.is_set():
            async for kind, p in pods.watch(ns, resource_version=rv, timeout_seconds=300):
                rv = p["metadata"].get("resourceVersion", rv)
                if kind == "BOOKMARK":
                    continue
                name, now = p["metadata"]["name"], time.monotonic()
                if p["spec"].get("nodeName"):
                    bound.setdefault(name, now)
                if (p.get("status") or {}).get("phase") == "Running":
                    running.setdefault(name, now)
                if _ready(p):
                    ready.setdefault(name, now)
                    ready_event.setdefault(name, asyncio.Event()).set()
                if len(ready) == n:
                    all_ready.set()
                    return

    watcher = asyncio.create_task(watch())
    sem = asyncio.Semaphore(concurrency)

    async def create(i: int) -> None:
        async with sem:
            name = f"p{i:05d}"
            created[name] = time.monotonic()
            await pods.create(_pod(name, ports), ns)
            if one_by_one:
                await ready_event.setdefault(name, asyncio.Event()).wait()

    t0 = time.monotonic()
    await asyncio.gather(*(create(i) for i in range(n)))
    t_created = time.monotonic()
    await asyncio.wait_for(all_ready.wait(), timeout=max(120, n))
    t_end = time.monotonic()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await client.close()
    return {"n": n, "t0": t0, "created_all": t_created, "end": t_end, "created": created, "bound": bound,
            "running": running, "ready": ready}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))]


def latency_rows(r: dict) -> list[tuple[str, ...]]:
    rows = []
    for what, stamps in (("create → bound", r["bound"]), ("create → Running", r["running"]),
                         ("create → Ready", r["ready"])):
        xs = [(stamps[k] - r["created"][k]) * 1000 for k in r["created"] if k in stamps]
        rows.append((what, str(len(xs)), f"{statistics.median(xs):.0f}", f"{_pct(xs, 99):.0f}", f"{max(xs):.0f}"))
    return rows


def throughput_rows(r: dict) -> list[tuple[str, ...]]:
    n, t0 = r["n"], r["t0"]
    rows = [("created", f"{n / (r['created_all'] - t0):.0f}", f"{r['created_all'] - t0:.2f}")]
    for what, stamps in (("bound by the scheduler", r["bound"]), ("Running (fake runtime)", r["running"]),
                         ("Ready", r["ready"])):
        span = max(stamps.values()) - t0
        rows.append((what, f"{n / span:.0f}", f"{span:.2f}"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-pods", type=int, default=40)
    ap.add_argument("--latency-concurrency", type=int, default=4)
    ap.add_argument("--oci-pods", type=int, default=20, help="pods per oci run (0: skip the oci runtime)")
    ap.add_argument("--fake-pods", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--verbose-log", metavar="PATH",
                    help="run the oci server with debug logging and copy its log to PATH (the start path's timings)")
    ap.add_argument("--profile", metavar="PATH", type=Path,
                    help="record the fake-runtime server with py-spy into PATH (collapsed stacks) and print its top frames")
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-") as tmp:
        if args.latency_pods:
            proc, kc = start_server(Path(tmp) / "process" / "data", "--runtime", "process")
            try:
                r = asyncio.run(run_pods(kc, args.latency_pods, args.latency_concurrency, ports=True))
            finally:
                stop_server(proc)
            t = Table(title=f"process runtime, bootcamp image: {args.latency_pods} pods, "
                            f"{args.latency_concurrency} creates in flight (ms)")
            for col in ("", "pods", "p50", "p99", "max"):
                t.add_column(col, justify="right" if col else "left")
            for row in latency_rows(r):
                t.add_row(*row)
            console.print(t)
        if args.oci_pods:
            data = Path(tmp) / "oci" / "data"
            proc, kc = start_server(data, "--runtime", "oci", verbose=bool(args.verbose_log))
            try:
                one = asyncio.run(run_pods(kc, args.oci_pods, 1, ports=True, ns="one", one_by_one=True))
                ten = asyncio.run(run_pods(kc, args.oci_pods, 10, ports=True, ns="ten"))
                mem = conmon_memory_kib(data)
            finally:
                stop_server(proc)
                killall(data)
                if args.verbose_log:
                    shutil.copyfile(data.parent / "server.log", args.verbose_log)
            t = Table(title=f"oci runtime, bootcamp image: {args.oci_pods} pods per run (ms)")
            for col in ("", "pods", "p50", "p99", "max"):
                t.add_column(col, justify="right" if col else "left")
            for label, r in (("one at a time", one), ("10 in flight", ten)):
                for row in latency_rows(r):
                    t.add_row(f"{label}: {row[0]}", *row[1:])
            console.print(t)
            if mem:
                for key, what in (("rss", "resident (RSS)"), ("pss", "proportional (PSS)"), ("private", "private")):
                    xs = [m[key] / 1024 for m in mem]
                    console.print(f"conmon memory per container, {what}: median {statistics.median(xs):.2f} MiB, "
                                  f"max {max(xs):.2f} MiB ({len(xs)} monitors)")
        if args.fake_pods:
            data = Path(tmp) / "fake" / "data"
            proc, kc = start_server(data, "--runtime", "fake")
            # a node takes 110 pods: join enough fake nodes for all of them
            extra = max(0, -(-args.fake_pods // 110) - 1)
            agents = join_fake_agents(data, kc, extra)
            try:
                asyncio.run(wait_nodes(kc, extra + 1))
                spy = procstat.Spy(proc.pid, args.profile) if args.profile else None
                cpu0 = procstat.cpu_seconds(proc.pid)
                r = asyncio.run(run_pods(kc, args.fake_pods, args.concurrency, ports=False))
                cpu = procstat.cpu_seconds(proc.pid) - cpu0
                if spy:
                    spy.stop()
            finally:
                for a in agents:
                    stop_server(a)
                stop_server(proc)
            t = Table(title=f"scheduler + fake runtime: {args.fake_pods} pods on {extra + 1} nodes, "
                            f"{args.concurrency} creates in flight")
            for col in ("", "pods/s", "seconds"):
                t.add_column(col, justify="right" if col else "left")
            for row in throughput_rows(r):
                t.add_row(*row)
            console.print(t)
            t = Table(title="fake runtime per-pod latency (ms)")
            for col in ("", "pods", "p50", "p99", "max"):
                t.add_column(col, justify="right" if col else "left")
            for row in latency_rows(r):
                t.add_row(*row)
            console.print(t)
            console.print(f"server CPU: {cpu:.2f} s, {cpu / args.fake_pods * 1000:.1f} ms per pod "
                          f"(load average {procstat.load_average()})")
            if args.profile:
                print_profile(args.profile)


def print_profile(path: Path) -> None:
    """The top self and cumulative frames of a py-spy recording."""
    own, cum = procstat.top_frames(path)
    for title, rows in (("self", own), ("cumulative", cum)):
        print(f"\nprofile, top {title}:")
        for frame, share in rows:
            print(f"  {share * 100:5.1f} %  {frame}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
