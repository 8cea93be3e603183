"""Benchmark: requests/s and latency through the service proxy vs straight to a pod, and
failed requests per rollout under load. Not run by CI:

    python bench/traffic.py [--requests 3000] [--concurrency 16] [--modes nftables,userspace]

For each Service data path (``--proxy-mode``: the nftables kernel path, as root with
``nft``, and the userspace proxy) a fresh `kubelite server` (process runtime) runs the
bootcamp Deployment behind a NodePort Service. Each request opens a new connection, as
curl does, so the per-connection cost (for the userspace proxy: accept, pick an
endpoint, dial, splice) is what is measured. With Debian's ``wrk`` installed, keep-alive
rows from a load generator that is not the bottleneck are added.

``--backend nginx`` (Debian's nginx-light installed; not needed by the tests) serves a small
fixed answer from the host's nginx in each pod's network namespace instead of the bootcamp
app, whose BusyBox CGI starts processes per request: then the Service path, not the app,
is what limits the numbers.

``--weighted`` (bootcamp backend) adds the cost of weighted routing: the same NodePort
measured again while a canary (`rollout.kubelite.dev/strategy: canary`) holds v2 at 20 %
of the requests, with the share the canary actually got.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.rollout import pct, print_table  # noqa: E402
from tests.conftest import start_server  # noqa: E402
from tests.test_services_rollout import Load, http_get, node_ip  # noqa: E402

# The network rule: a benchmark never contacts a registry off this machine, nor resolves its name.
os.environ["KUBELITE_OFFLINE"] = "1"


async def any_get(host: str, port: int, timeout: float = 5.0) -> bytes:
    """One GET on a fresh connection that only checks for a 200 (the nginx backend)."""
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        w.write(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        raw = await asyncio.wait_for(r.read(), timeout)
    finally:
        w.close()
    if not raw.startswith(b"HTTP/1.") or raw.split()[1] != b"200":
        raise OSError(f"bad reply {raw[:80]!r}")
    return raw


GET = http_get


async def measure(host: str, port: int, total: int, concurrency: int) -> tuple[float, list[float], int]:
    """(requests/s, latencies in ms, failures) for `total` GETs over `concurrency` clients."""
    lat: list[float] = []
    failed = 0
    left = total

    async def client():
        nonlocal left, failed
        while left > 0:
            left -= 1
            t = time.perf_counter()
            try:
                await GET(host, port)
                lat.append((time.perf_counter() - t) * 1000)
            except (TimeoutError, OSError):
                failed += 1
    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return total / (time.perf_counter() - t0), lat, failed


def rollout_under_load(srv, host: str, port: int, verb: list[str]) -> tuple[int, int, float]:
    """(served, failed, seconds) while one rollout runs to completion."""
    with Load(host, port, clients=8, pause=0.005) as load:
        srv.wait_for(lambda: len(load.replies) >= 50, what="load flowing")
        t0 = time.monotonic()
        srv.kubectl("-n", "bench", *verb, check=True)
        srv.kubectl("-n", "bench", "rollout", "status", "deployment/web", "--timeout=120s", check=True, timeout=150)
        took = time.monotonic() - t0
        end = time.monotonic()
        srv.wait_for(lambda: len(load.since(end)) >= 50, what="load after the rollout")
    return len(load.replies), len(load.failures), took


def wrk(host: str, port: int, seconds: int, concurrency: int) -> tuple[float, float, float] | None:
    """(requests/s, p50 ms, p99 ms) from Debian's wrk (keep-alive), or None without it."""
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--latency", f"http://{host}:{port}/"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return (float(rps.group(1)) if rps else float("nan")), ms("50"), ms("99")


def wrk_rows(paths: list[tuple[str, str, int]], rounds: int, seconds: int,
             concurrency: int) -> list[tuple[str, str, str, str, str, str]]:
    """wrk table rows, the first path being the baseline; with several rounds the paths take
    turns (so a slow spell of the shared machine hits both) and each column is a median."""
    runs: list[list[tuple[float, float, float]]] = [[] for _ in paths]
    for _ in range(rounds):
        for i, (_, h, p) in enumerate(paths):
            got = wrk(h, p, seconds, concurrency)
            if got is None:
                return []
            runs[i].append(got)
    med = [tuple(statistics.median(r[k] for r in each) for k in range(3)) for each in runs]
    base = med[0]
    return [(label, f"{m[0]:.0f}", f"{m[1]:.2f}", f"{m[2]:.2f}", f"{m[2] - base[2]:+.2f}", f"{m[0] / base[0]:.2f}")
            for (label, _, _), m in zip(paths, med, strict=True)]


NGINX_CONF = """worker_processes 1;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/tmp;
  proxy_temp_path {dir}/tmp;
  fastcgi_temp_path {dir}/tmp;
  uwsgi_temp_path {dir}/tmp;
  scgi_temp_path {dir}/tmp;
  server {{ listen 8080; location / {{ return 200 "hello\\n"; }} }}
}}
"""


def deploy_nginx(srv, tmp: Path, replicas: int) -> None:
    """A Deployment whose pods run the host's nginx (process runtime) in their own netns."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise SystemExit("--backend nginx needs Debian's nginx-light (apt-get install nginx-light)")
    d = tmp / "nginx"
    (d / "tmp").mkdir(parents=True)
    (d / "nginx.conf").write_text(NGINX_CONF.format(dir=d))
    # Each replica writes its own pid file (nginx removes it when it stops).
    cmd = f'exec {nginx} -c {d}/nginx.conf -g "pid {d}/nginx-$$.pid; daemon off;"'
    import json
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "bench"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "nginx", "image": "jocatalin/kubernetes-bootcamp:v1",
                                                          "command": ["/bin/sh", "-c", cmd],
                                                          "ports": [{"containerPort": 8080}]}]}}}}
    srv.kubectl("apply", "-f", "-", input=json.dumps(dep), check=True)


def kernel_path_usable() -> bool:
    """Root with nft: what the nftables Service path needs."""
    return os.geteuid() == 0 and shutil.which("nft") is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--modes", default="nftables,userspace" if kernel_path_usable() else "userspace",
                    help="Service data paths to measure, comma-separated (nftables, userspace)")
    ap.add_argument("--wrk-seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1,
                    help="wrk rounds per path, taking turns; the table shows medians")
    ap.add_argument("--skip-rollouts", action="store_true", help="only the throughput tables")
    ap.add_argument("--weighted", action="store_true",
                    help="also measure the NodePort while a canary holds 20%% of the traffic (weighted routing)")
    ap.add_argument("--backend", choices=["bootcamp", "nginx"], default="bootcamp",
                    help="what the pods serve (nginx: the host's nginx, a fixed 6-byte answer)")
    args = ap.parse_args()
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        bench_mode(args, mode)


async def versions(host: str, port: int, total: int, concurrency: int) -> tuple[float, list[float], list[int]]:
    """(requests/s, latencies in ms, the bootcamp version of each reply)."""
    lat: list[float] = []
    got: list[int] = []
    left = total

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t = time.perf_counter()
            _, v = await http_get(host, port, 20.0)
            lat.append((time.perf_counter() - t) * 1000)
            got.append(v)
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(got) / (time.perf_counter() - start), lat, got


def bench_weighted(srv, mode: str, host: str, port: int, args: argparse.Namespace) -> None:
    """The NodePort unweighted, then with a canary holding v2 at 20 % (then resumed to the end)."""
    rows = []
    rps, lat, got = asyncio.run(versions(host, port, args.requests, args.concurrency))
    rows.append((f"NodePort → {args.replicas} pods, one revision", f"{rps:.0f}", f"{pct(lat, 0.5):.2f}",
                 f"{pct(lat, 0.99):.2f}", "-"))
    srv.kubectl("-n", "bench", "annotate", "deployment/web", "rollout.kubelite.dev/strategy=canary",
                "rollout.kubelite.dev/canary-steps=20%,pause,100%", check=True)
    srv.wait_for(lambda: (srv.kjson("-n", "bench", "get", "deployment", "web")["metadata"].get("annotations") or {})
                 .get("rollout.kubelite.dev/last-complete"), what="last-complete")
    srv.kubectl("-n", "bench", "set", "image", "deployment/web",
                "kubernetes-bootcamp=jocatalin/kubernetes-bootcamp:v2", check=True)

    def held() -> bool:
        d = srv.kjson("-n", "bench", "get", "deployment", "web")
        return bool(d["spec"].get("paused")) and (d["status"].get("availableReplicas") or 0) > args.replicas
    srv.wait_for(held, timeout=120, what="the canary holding at 20%")
    asyncio.run(versions(host, port, min(200, args.requests), args.concurrency))  # warm up
    rps, lat, got = asyncio.run(versions(host, port, args.requests, args.concurrency))
    rows.append((f"NodePort → {args.replicas} + 1 pods, canary at 20 %", f"{rps:.0f}", f"{pct(lat, 0.5):.2f}",
                 f"{pct(lat, 0.99):.2f}", f"{100 * got.count(2) / max(len(got), 1):.1f} %"))
    print_table(f"[{mode}] Weighted routing: {args.requests} GETs, {args.concurrency} concurrent clients",
                ["path", "req/s", "p50 ms", "p99 ms", "canary share"], rows)
    srv.kubectl("-n", "bench", "rollout", "resume", "deployment/web", check=True)
    srv.kubectl("-n", "bench", "rollout", "status", "deployment/web", check=True, timeout=120)


def one_pod_node_port(srv, host: str) -> int:
    """A second NodePort Service whose only endpoint is the first pod (given a label of its own)."""
    import json
    pod = srv.kjson("-n", "bench", "get", "pods")["items"][0]["metadata"]["name"]
    srv.kubectl("-n", "bench", "label", "pod", pod, "bench-one=yes", check=True)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "one", "namespace": "bench"},
           "spec": {"type": "NodePort", "selector": {"app": "web", "bench-one": "yes"},
                    "ports": [{"port": 8080, "targetPort": 8080}]}}
    srv.kubectl("apply", "-f", "-", input=json.dumps(svc), check=True)
    port = int(srv.kjson("-n", "bench", "get", "service", "one")["spec"]["ports"][0]["nodePort"])
    srv.wait_for(lambda: asyncio.run(GET(host, port)), what="the one-pod node port answering")
    return port


def bench_mode(args: argparse.Namespace, mode: str) -> None:
    """Every table for one Service data path, on a fresh server."""
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-traffic-"))
    srv = start_server(tmp, "--proxy-mode", mode)
    try:
        srv.kubectl("create", "namespace", "bench", check=True)
        if args.backend == "nginx":
            global GET
            GET = any_get
            deploy_nginx(srv, tmp, args.replicas)
            args.skip_rollouts = True  # the rollouts switch bootcamp images
        else:
            srv.kubectl("-n", "bench", "create", "deployment", "web", "--image=jocatalin/kubernetes-bootcamp:v1",
                        f"--replicas={args.replicas}", check=True)
        srv.kubectl("-n", "bench", "expose", "deployment", "web", "--type=NodePort", "--port=8080", check=True)
        srv.kubectl("-n", "bench", "rollout", "status", "deployment/web", check=True, timeout=120)
        port = srv.kjson("-n", "bench", "get", "service", "web")["spec"]["ports"][0]["nodePort"]
        host = node_ip(srv)
        pod_ip = srv.kjson("-n", "bench", "get", "pods")["items"][0]["status"]["podIP"]
        srv.wait_for(lambda: asyncio.run(GET(host, port)), what="the node port answering")

        cluster_ip = srv.kjson("-n", "bench", "get", "service", "web")["spec"]["clusterIP"]
        rows = []
        base_p50 = base_p99 = None
        for label, h, p, n in (("direct to one pod", pod_ip, 8080, args.requests),
                               (f"NodePort → {args.replicas} pods", host, port, args.requests),
                               (f"ClusterIP → {args.replicas} pods", cluster_ip, 8080, args.requests)):
            asyncio.run(measure(h, p, min(200, n), args.concurrency))  # warm up
            rps, lat, failed = asyncio.run(measure(h, p, n, args.concurrency))
            p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
            if base_p50 is None:
                base_p50, base_p99 = p50, p99
            rows.append((label, f"{rps:.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{p50 - base_p50:+.2f}",
                         f"{p99 - base_p99:+.2f}", failed))
        print_table(f"[{mode}] Throughput and latency: {args.requests} GETs, {args.concurrency} concurrent clients, "
                    "one connection per request",
                    ["path", "req/s", "p50 ms", "p99 ms", "added p50", "added p99", "failed"], rows)
        if args.weighted and args.backend == "bootcamp":
            bench_weighted(srv, mode, host, port, args)
        paths = [("direct to one pod", pod_ip, 8080), (f"NodePort → {args.replicas} pods", host, port)]
        if args.replicas > 1 and shutil.which("wrk"):
            # The same single pod through a NodePort of its own: with one nginx busy in both rows,
            # the difference is the data path's, not that of more server processes on the cores.
            paths.append(("NodePort → that one pod", host, one_pod_node_port(srv, host)))
        rows = wrk_rows(paths, args.rounds, args.wrk_seconds, args.concurrency)
        if rows:
            print_table(f"[{mode}] wrk, keep-alive: {args.concurrency} connections, {args.wrk_seconds} s"
                        + (f", median of {args.rounds} alternating rounds" if args.rounds > 1 else ""),
                        ["path", "req/s", "p50 ms", "p99 ms", "added p99", "ratio to direct"], rows)

        if args.skip_rollouts:
            return
        rows = []
        for name, verb in (("set image v1 → v2", ["set", "image", "deployment/web",
                                                  "kubernetes-bootcamp=jocatalin/kubernetes-bootcamp:v2"]),
                           ("rollout restart", ["rollout", "restart", "deployment/web"]),
                           ("rollout undo", ["rollout", "undo", "deployment/web"])):
            served, failed, took = rollout_under_load(srv, host, port, verb)
            rows.append((name, f"{took:.1f}", served, failed))
        print_table(f"[{mode}] Rollouts under load (8 clients through the NodePort)",
                    ["rollout", "seconds", "requests", "failed"], rows)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
