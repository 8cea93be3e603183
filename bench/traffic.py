"""Benchmark: requests/s and latency through the service proxy vs straight to a pod, and
failed requests per rollout under load. Not run by CI:

    python bench/traffic.py [--requests 3000] [--concurrency 16]

A fresh `kubelite server` (process runtime) runs the bootcamp Deployment behind a
NodePort Service. Each request opens a new connection, as curl does, so the proxy's
per-connection cost (accept, pick an endpoint, dial, splice) is what is measured.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
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
                await http_get(host, port)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--replicas", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-traffic-"))
    srv = start_server(tmp)
    try:
        srv.kubectl("create", "namespace", "bench", check=True)
        srv.kubectl("-n", "bench", "create", "deployment", "web", "--image=jocatalin/kubernetes-bootcamp:v1",
                    f"--replicas={args.replicas}", check=True)
        srv.kubectl("-n", "bench", "expose", "deployment", "web", "--type=NodePort", "--port=8080", check=True)
        srv.kubectl("-n", "bench", "rollout", "status", "deployment/web", check=True, timeout=120)
        port = srv.kjson("-n", "bench", "get", "service", "web")["spec"]["ports"][0]["nodePort"]
        host = node_ip(srv)
        pod_ip = srv.kjson("-n", "bench", "get", "pods")["items"][0]["status"]["podIP"]
        srv.wait_for(lambda: asyncio.run(http_get(host, port)), what="the node port answering")

        rows = []
        base_p50 = base_p99 = None
        for label, h, p, n in (("direct to one pod", pod_ip, 8080, args.requests),
                               (f"NodePort → {args.replicas} pods", host, port, args.requests)):
            asyncio.run(measure(h, p, min(200, n), args.concurrency))  # warm up
            rps, lat, failed = asyncio.run(measure(h, p, n, args.concurrency))
            p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
            if base_p50 is None:
                base_p50, base_p99 = p50, p99
            rows.append((label, f"{rps:.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{p50 - base_p50:+.2f}",
                         f"{p99 - base_p99:+.2f}", failed))
        print_table(f"Throughput and latency: {args.requests} GETs, {args.concurrency} concurrent clients, "
                    "one connection per request",
                    ["path", "req/s", "p50 ms", "p99 ms", "added p50", "added p99", "failed"], rows)

        rows = []
        for name, verb in (("set image v1 → v2", ["set", "image", "deployment/web",
                                                  "kubernetes-bootcamp=jocatalin/kubernetes-bootcamp:v2"]),
                           ("rollout restart", ["rollout", "restart", "deployment/web"]),
                           ("rollout undo", ["rollout", "undo", "deployment/web"])):
            served, failed, took = rollout_under_load(srv, host, port, verb)
            rows.append((name, f"{took:.1f}", served, failed))
        print_table("Rollouts under load (8 clients through the NodePort)",
                    ["rollout", "seconds", "requests", "failed"], rows)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
