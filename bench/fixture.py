"""Test-fixture benchmark (not run by CI): how fast kubelite.testing starts a cluster and resets it.

1. cold server: spawn `python -m kubelite.cli server --api-only --allow-reset` → the first
   authenticated GET /api/v1/namespaces/default answers 200 (Python start and imports included);
2. fixture, cold launcher: `kubelite.testing.cluster()` when its launcher is not running yet
   (what the first cluster of a test process costs);
3. fixture, warm: `cluster()` with the launcher warm (every later cluster of the process);
4. fixture, persistent launcher: `cluster()` in a new test process each time, with
   `KUBELITE_LAUNCHER=persistent` and the user's launcher already running (what the first
   cluster of every later test run costs); also that process's whole life to its first answer;
5. stop: leaving the `with` block (server stopped, directory removed);
6. reset: `Cluster.reset()` after the test made N ConfigMaps (N = 0, 10, 100), p50/p99/max.

    python bench/fixture.py [--starts 5] [--resets 50]
"""
from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kubelite.testing import Cluster, cluster, free_port
from kubelite.testing import fixture as fixture_module

# The network rule: a benchmark never contacts a registry off this machine, nor resolves its name.
os.environ["KUBELITE_OFFLINE"] = "1"


def pct(xs: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of xs."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def admin_get(data_dir: Path, port: int, path: str) -> int:
    """GET path as the admin; the status code."""
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.crt"))
    ctx.load_cert_chain(str(data_dir / "tls" / "admin.crt"), str(data_dir / "tls" / "admin.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used: a load-independent view of a start."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, list[float]] = {}


def bytecode_cached() -> bool:
    """Whether the server's modules have compiled bytecode next to them (with PYTHONDONTWRITEBYTECODE
    and a fresh checkout they do not, and a cold start then spends most of its time compiling)."""
    root = Path(__file__).resolve().parent.parent / "kubelite"
    return all(Path(importlib.util.cache_from_source(str(root / name))).exists()
               for name in ("server.py", "apiserver/app.py", "apiserver/registry.py"))


def cold_server() -> float:
    """Seconds from spawning the server process to its first successful request."""
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-bench-"))
    data, port = tmp / "data", free_port()
    began = time.monotonic()
    with open(tmp / "log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(data),
                                 "--api-port", str(port), "--api-only", "--allow-reset"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {(tmp / 'log').read_text()}")
            if (data / "kubeconfig").exists():
                try:
                    if admin_get(data, port, "/api/v1/namespaces/default") == 200:
                        took = time.monotonic() - began
                        CPU.setdefault("cold server process → first request", []).append(cpu_seconds(proc.pid))
                        return took
                except OSError:
                    pass
            time.sleep(0.002)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def timed_start(c: Cluster, what: str) -> float:
    """Seconds ``c.start()`` took (the server's CPU time is noted under ``what``)."""
    began = time.monotonic()
    c.start()
    took = time.monotonic() - began
    CPU.setdefault(what, []).append(cpu_seconds(c.pid))
    return took


PERSISTENT_CLIENT = """
import json, os, sys, time
began = float(sys.argv[1])
from kubelite.testing import cluster
c = cluster()
c.start()
print(json.dumps({"start": c.start_seconds, "process": time.time() - began, "pid": c.pid,
                  "cpu": open(f"/proc/{c.pid}/stat").read().rpartition(")")[2].split()[11:13]}))
c.stop()
"""


def persistent_starts(n: int) -> tuple[list[float], list[float]]:
    """``cluster().start()`` in n new test processes served by one warm persistent launcher:
    the starts, and each process's time from its exec to the first answer."""
    launchers = tempfile.mkdtemp(prefix="kubelite-bench-launchers-")
    env = dict(os.environ, KUBELITE_LAUNCHER="persistent", KUBELITE_LAUNCHER_DIR=launchers,
               PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    starts, processes = [], []
    try:
        for i in range(n + 1):  # the first one starts the launcher itself and is not counted
            out = subprocess.run([sys.executable, "-c", PERSISTENT_CLIENT, str(time.time())], env=env,
                                 capture_output=True, text=True, timeout=120, check=True).stdout
            got = json.loads(out)
            if i:
                starts.append(got["start"])
                processes.append(got["process"])
                CPU.setdefault("fixture, persistent launcher → first request", []).append(
                    sum(int(v) for v in got["cpu"]) / os.sysconf("SC_CLK_TCK"))
    finally:
        subprocess.run([sys.executable, "-m", "kubelite.testing.launcher", "--stop"], env=env, timeout=120)
        shutil.rmtree(launchers, ignore_errors=True)
    return starts, processes


def make_configmaps(c: Cluster, conn: http.client.HTTPSConnection, n: int) -> None:
    """Create n ConfigMaps in default over one kept-alive connection."""
    for i in range(n):
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}, "data": {"k": "v"}})
        conn.request("POST", "/api/v1/namespaces/default/configmaps", body=body,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 201:
            raise SystemExit(f"create failed: {r.status}")


def main() -> None:
    """Run the measurements and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=5, help="starts measured of each kind")
    ap.add_argument("--resets", type=int, default=50, help="resets measured per object count")
    args = ap.parse_args()
    rows: list[tuple[str, list[float]]] = []

    rows.append(("cold server process → first request", [cold_server() for _ in range(args.starts)]))
    cold, warm, stops = [], [], []
    for _ in range(args.starts):
        fixture_module._launcher.close()
        c = cluster()
        cold.append(timed_start(c, "fixture, cold launcher → first request"))
        launcher = fixture_module._launcher._proc
        if launcher is not None:  # the cold path is the launcher's imports plus the forked server
            CPU["fixture, cold launcher → first request"][-1] += cpu_seconds(launcher.pid)
        c.stop()
    rows.append(("fixture, cold launcher → first request", cold))
    for _ in range(args.starts):
        c = cluster()
        warm.append(timed_start(c, "fixture, warm launcher → first request"))
        began = time.monotonic()
        c.stop()
        stops.append(time.monotonic() - began)
    rows.append(("fixture, warm launcher → first request", warm))
    rows.append(("fixture stop (server stopped, dir removed)", stops))
    starts, processes = persistent_starts(args.starts)
    rows.append(("fixture, persistent launcher → first request", starts))
    rows.append(("  a new test process: exec → first request", processes))

    with cluster() as c:
        ctx = ssl.create_default_context(cafile=c.ca_file)
        ctx.load_cert_chain(c.cert_file, c.key_file)
        conn = http.client.HTTPSConnection("127.0.0.1", c.port, context=ctx, timeout=30)
        c.reset()  # the admin connection is open before timing
        for n in (0, 10, 100):
            times = []
            for _ in range(args.resets):
                make_configmaps(c, conn, n)
                began = time.monotonic()
                c.reset()
                times.append(time.monotonic() - began)
            rows.append((f"reset after {n} ConfigMaps", times))
        conn.close()
    fixture_module._launcher.close()

    table = Table(title="kubelite.testing: start and reset (seconds; ms for resets)")
    for col in ("what", "runs", "p50", "p99", "max", "server CPU p50"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for what, xs in rows:
        scale, unit = (1000, " ms") if what.startswith("reset") else (1, " s")
        cpu = f"{statistics.median(CPU[what]):.2f} s" if what in CPU else ""
        table.add_row(what, str(len(xs)), *(f"{v * scale:.3f}{unit}" for v in (statistics.median(xs), pct(xs, 99), max(xs))),
                      cpu)
    console = Console(width=150)
    console.print(table)
    cached = "yes" if bytecode_cached() else "no: every cold start compiles the sources (python -m compileall kubelite)"
    console.print(f"kubelite's bytecode cached: {cached}")
    console.print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; the server's CPU "
                  "time at its first answer does not count the time it waited for a CPU (for the fixture's cold launcher it "
                  "adds the launcher's own, its imports; a warm launcher's are paid before)")


if __name__ == "__main__":
    main()
