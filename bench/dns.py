"""Cluster DNS: queries/s and p50/p99 latency of the server's DNS listener over loopback.

Starts its own `kubelite server --runtime fake` (every pod address loopback) in a temporary
directory, creates `--services` ClusterIP Services and one headless Service with fake pods,
reads the listener's address from the kube-dns EndpointSlice, and sends queries from
`--clients` processes, each keeping `--window` queries in flight over UDP (plus one TCP run).
Asserts nothing; prints a table.  Run from the repository root:

    python bench/dns.py [--queries 20000] [--clients 1] [--window 32] [--services 50]
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import multiprocessing
import os
import random
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file would shadow
# the dnspython package, whose name it shares: look elsewhere first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent / "tests"))
os.environ["KUBELITE_OFFLINE"] = "1"  # the benchmark never forwards off the machine
import dns.message  # noqa: E402
from conftest import start_server  # noqa: E402


def names(ns: str, services: int) -> list[tuple[str, str]]:
    """The mix of queries: A of Services, the headless Service, SRV, and misses (NXDOMAIN)."""
    out = [(f"s{i}.{ns}.svc.cluster.local", "A") for i in range(services)]
    out += [(f"db.{ns}.svc.cluster.local", "A"), (f"_http._tcp.s0.{ns}.svc.cluster.local", "SRV"),
            (f"missing.{ns}.svc.cluster.local", "A")]
    return out


def udp_client(addr: str, port: int, wires: list[bytes], count: int, window: int, out: multiprocessing.Queue) -> None:
    """Send ``count`` queries keeping ``window`` in flight; put the latencies (s) on ``out``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((addr, port))
    sock.settimeout(2.0)
    sent: dict[int, float] = {}
    lat: list[float] = []
    lost = 0
    qid = random.randrange(65536)
    next_i = 0

    def send() -> None:
        nonlocal qid, next_i
        qid = (qid + 1) & 0xFFFF
        wire = wires[next_i % len(wires)]
        next_i += 1
        sent[qid] = time.perf_counter()
        sock.send(struct.pack("!H", qid) + wire[2:])

    start = time.perf_counter()
    for _ in range(min(window, count)):
        send()
    while len(lat) + lost < count:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            lost += len(sent)
            sent.clear()
            for _ in range(min(window, count - len(lat) - lost)):
                send()
            continue
        t0 = sent.pop(struct.unpack("!H", data[:2])[0], None)
        if t0 is None:
            continue
        lat.append(time.perf_counter() - t0)
        if next_i < count:
            send()
    out.put((lat, lost, time.perf_counter() - start))


async def tcp_run(addr: str, port: int, wires: list[bytes], count: int) -> list[float]:
    """One TCP connection, one query at a time (as a resolver retrying after TC would)."""
    reader, writer = await asyncio.open_connection(addr, port)
    lat = []
    for i in range(count):
        w = wires[i % len(wires)]
        t0 = time.perf_counter()
        writer.write(struct.pack("!H", len(w)) + w)
        await writer.drain()
        n = struct.unpack("!H", await reader.readexactly(2))[0]
        await reader.readexactly(n)
        lat.append(time.perf_counter() - t0)
    writer.close()
    return lat


def pct(values: list[float], p: float) -> float:
    """The p-th percentile in milliseconds."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))] * 1000


def setup(srv, services: int) -> tuple[str, int, str]:
    """Services and a headless Service with fake pods; the listener's address."""
    ns = "bench"
    srv.kubectl("create", "namespace", ns, check=True)
    items = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}"},
              "spec": {"selector": {"app": f"s{i}"}, "ports": [{"name": "http", "port": 80}]}} for i in range(services)]
    items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
                  "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "db", "port": 5432}]}})
    items += [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"db-{i}", "labels": {"app": "db"}},
               "spec": {"containers": [{"name": "c", "image": "gcr.io/google-samples/kubernetes-bootcamp:v1"}]}}
              for i in range(3)]
    srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                check=True, timeout=120)
    eps = srv.wait_for(lambda: srv.kjson("get", "endpointslice", "kube-dns", "-n", "kube-system"), timeout=60)
    addr = eps["endpoints"][0]["addresses"][0]
    if not ipaddress.ip_address(addr).is_loopback:
        raise SystemExit(f"the DNS listener is on {addr}, not loopback: refusing to send it traffic")
    port = next(p["port"] for p in eps["ports"] if p["protocol"] == "UDP")
    return addr, port, ns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=20000, help="UDP queries in all")
    ap.add_argument("--clients", type=int, default=1, help="client processes")
    ap.add_argument("--window", type=int, default=32, help="queries in flight per client")
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--tcp-queries", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-dns-") as tmp:
        srv = start_server(Path(tmp), "--runtime", "fake")
        try:
            addr, port, ns = setup(srv, args.services)
            wires = [dns.message.make_query(n, t).to_wire() for n, t in names(ns, args.services)]
            # Warm up (and wait until the headless Service has its endpoints).
            srv.wait_for(lambda: dns.message.from_wire(_udp_once(addr, port, wires[-3])).answer, timeout=60)
            out: multiprocessing.Queue = multiprocessing.Queue()
            per = args.queries // args.clients
            procs = [multiprocessing.Process(target=udp_client, args=(addr, port, wires, per, args.window, out))
                     for _ in range(args.clients)]
            for p in procs:
                p.start()
            results = [out.get() for _ in procs]
            for p in procs:
                p.join()
            lat = [x for r in results for x in r[0]]
            lost = sum(r[1] for r in results)
            elapsed = max(r[2] for r in results)
            tcp = asyncio.run(tcp_run(addr, port, wires, args.tcp_queries))
        finally:
            srv.stop()
    print(f"{'run':<28}{'queries':>9}{'q/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'lost':>6}")
    print(f"{f'UDP, {args.clients}x{args.window} in flight':<28}{len(lat):>9}{len(lat) / elapsed:>10.0f}"
          f"{pct(lat, 50):>9.2f}{pct(lat, 99):>9.2f}{lost:>6}")
    print(f"{'TCP, 1 connection, 1 by 1':<28}{len(tcp):>9}{len(tcp) / sum(tcp):>10.0f}"
          f"{pct(tcp, 50):>9.2f}{pct(tcp, 99):>9.2f}{0:>6}")
    print(f"python {sys.version.split()[0]}; mean UDP latency {statistics.fmean(lat) * 1000:.2f} ms; "
          f"{len(wires)} distinct names (A, headless A, SRV, NXDOMAIN)")


def _udp_once(addr: str, port: int, wire: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(wire, (addr, port))
        return s.recv(4096)


if __name__ == "__main__":
    main()
