"""Benchmark: the tutorial's module 6 on a fresh `kubelite server`, under load.

Measures, with the real kubectl (loopback only):
  * cold start: `kubelite server` spawned → /readyz answers 200 → the node is Ready;
  * wall time of each module 6 step at 4 replicas:
      set image :v2  → `rollout status` says rolled out,
      set image :v10 → stuck as upstream shows it (3/4 ready, 2 up-to-date, 3 available,
                       two pods failing to pull),
      rollout undo   → rolled out again;
  * requests served and failed during each step by a concurrent load (new connection per
    request, like `curl` in a loop) through the NodePort.

Usage: python3 bench/tutorial.py [--clients N] [--kubectl PATH]
       python3 bench/tutorial.py --cold-only [--runs N]   (the cold-start rows alone)
Not run by CI; prints a table.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass

# The network rule: a benchmark never contacts a registry off this machine, nor resolves its name.
os.environ["KUBELITE_OFFLINE"] = "1"

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
APP = "kubernetes-bootcamp"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(cond, timeout: float, what: str, interval: float = 0.02) -> float:
    """Poll cond() until truthy; return the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return time.monotonic()
        except Exception:
            pass
        time.sleep(interval)
    raise SystemExit(f"bench: timed out waiting for {what}")


class Cluster:
    """A kubelite server process and a kubectl bound to it."""

    def __init__(self, kubectl: str):
        self.dir = tempfile.mkdtemp(prefix="kubelite-bench-")
        self.port = free_port()
        self.kubectl_bin = kubectl
        self.env = dict(os.environ, KUBECONFIG=os.path.join(self.dir, "kubeconfig"),
                        KUBECACHEDIR=os.path.join(self.dir, "kcache"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> tuple[float, float]:
        """Spawn the server; return seconds to /readyz and to a Ready node."""
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        t0 = time.monotonic()
        # The child keeps its own copy of the log's descriptor; ours can close at once.
        with open(os.path.join(self.dir, "server.log"), "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "kubelite.cli", "server", "--data-dir",
                                          os.path.join(self.dir, "data"), "--api-port", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        self.env["KUBECONFIG"] = os.path.join(self.dir, "data", "kubeconfig")

        def readyz() -> bool:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/readyz", context=ctx, timeout=1) as r:
                return r.status == 200
        t_ready = wait(readyz, 60, "/readyz", interval=0.01)

        # As the admin: the token file's bootstrap token may not list nodes (it only joins agents).
        tls = os.path.join(self.dir, "data", "tls")
        ctx.load_cert_chain(os.path.join(tls, "admin.crt"), os.path.join(tls, "admin.key"))

        def node_ready() -> bool:
            # Straight to the API (kubectl's own start-up would dominate the measure).
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/api/v1/nodes", context=ctx, timeout=1) as r:
                nodes = json.load(r)["items"]
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for n in nodes for c in n.get("status", {}).get("conditions", []))
        t_node = wait(node_ready, 60, "a Ready node", interval=0.01)
        return t_ready - t0, t_node - t0

    def k(self, *args: str, check: bool = True) -> str:
        p = subprocess.run([self.kubectl_bin, *args], capture_output=True, text=True, env=self.env, timeout=300)
        if check and p.returncode:
            raise SystemExit(f"bench: kubectl {' '.join(args)}: {p.stderr}")
        return p.stdout

    def status(self) -> dict:
        return json.loads(self.k("get", "deployment", APP, "-o", "json"))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Counts:
    ok: int = 0
    failed: int = 0


class Load:
    """N clients looping GET / on the NodePort, counting per phase."""

    def __init__(self, port: int, clients: int):
        self.port = port
        self.phase = "warm-up"
        self.counts: dict[str, Counts] = {}
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            phase = self.phase
            ok = False
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/")
                r = c.getresponse()
                ok = r.status == 200 and r.read().startswith(b"Hello Kubernetes bootcamp!")
                c.close()
                err = "" if ok else f"HTTP {r.status}"
            except Exception as e:  # a refused or reset connection is a failed request
                err = f"{type(e).__name__}: {e}"
            with self._lock:
                cnt = self.counts.setdefault(phase, Counts())
                if ok:
                    cnt.ok += 1
                else:
                    cnt.failed += 1
                    self.errors.setdefault(phase, err)


def counters(d: dict) -> tuple[int, int, int, int]:
    st = d.get("status", {})
    return (st.get("readyReplicas", 0), st.get("updatedReplicas", 0), st.get("availableReplicas", 0),
            st.get("replicas", 0))


def cold_only(kubectl: str, runs: int) -> int:
    """The cold-start rows alone: ``runs`` fresh servers, one after another."""
    ready: list[float] = []
    node: list[float] = []
    loads = []
    for _ in range(runs):
        with open("/proc/loadavg") as f:
            loads.append(f.read().split()[0])
        cl = Cluster(kubectl)
        try:
            r, n = cl.start()
        finally:
            cl.stop()
            shutil.rmtree(cl.dir, ignore_errors=True)
        ready.append(r)
        node.append(n)
    print(f"\nkubelite tutorial cold start ({runs} run(s), {os.cpu_count()} CPUs, load average {', '.join(loads)})\n")
    for name, xs in (("cold start → /readyz", ready), ("cold start → node Ready", node)):
        xs = sorted(xs)
        print(f"{name:<24}  median {xs[(len(xs) - 1) // 2]:.2f} s  (min {xs[0]:.2f} s, max {xs[-1]:.2f} s)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=4, help="concurrent load clients (default 4)")
    ap.add_argument("--kubectl", default=KUBECTL)
    ap.add_argument("--cold-only", action="store_true", help="only the cold-start rows, over --runs fresh servers")
    ap.add_argument("--runs", type=int, default=1, help="fresh servers started with --cold-only (median, min, max)")
    args = ap.parse_args()
    if args.cold_only:
        return cold_only(args.kubectl, max(1, args.runs))

    cl = Cluster(args.kubectl)
    rows: list[tuple[str, str, str]] = []
    try:
        t_readyz, t_node = cl.start()
        rows += [("cold start → /readyz", f"{t_readyz:.2f} s", ""), ("cold start → node Ready", f"{t_node:.2f} s", "")]

        cl.k("create", "deployment", APP, "--image=gcr.io/google-samples/kubernetes-bootcamp:v1")
        cl.k("expose", f"deployment/{APP}", "--type=NodePort", "--port", "8080")
        cl.k("scale", f"deployments/{APP}", "--replicas=4")
        wait(lambda: counters(cl.status()) == (4, 4, 4, 4), 120, "4/4 ready", interval=0.2)
        node_port = int(cl.k("get", f"services/{APP}", "-o", "go-template={{(index .spec.ports 0).nodePort}}"))
        wait(lambda: len(json.loads(cl.k("get", "endpoints", APP, "-o", "json"))["subsets"][0]["addresses"]) == 4,
             60, "4 endpoints", interval=0.2)

        load = Load(node_port, args.clients)
        load.start()
        time.sleep(2)  # a warm-up period of steady load, measured as its own phase

        load.phase = "set image :v2 → rolled out"
        t0 = time.monotonic()
        cl.k("set", "image", f"deployments/{APP}", f"{APP}=jocatalin/kubernetes-bootcamp:v2")
        cl.k("rollout", "status", f"deployments/{APP}")
        t_v2 = time.monotonic() - t0

        load.phase = "set image :v10 → stuck (3/4, 2, 3)"
        t0 = time.monotonic()
        cl.k("set", "image", f"deployments/{APP}", f"{APP}=gcr.io/google-samples/kubernetes-bootcamp:v10")

        def stuck() -> bool:
            if counters(cl.status())[:3] != (3, 2, 3):
                return False
            pods = json.loads(cl.k("get", "pods", "-o", "json"))["items"]
            waiting = [cs["state"]["waiting"]["reason"] for p in pods for cs in p["status"].get("containerStatuses", [])
                       if "waiting" in cs.get("state", {})]
            return sum(r in ("ErrImagePull", "ImagePullBackOff") for r in waiting) == 2
        wait(stuck, 120, "the v10 rollout to be stuck", interval=0.1)
        t_v10 = time.monotonic() - t0

        load.phase = "rollout undo → rolled out"
        t0 = time.monotonic()
        cl.k("rollout", "undo", f"deployments/{APP}")
        cl.k("rollout", "status", f"deployments/{APP}")
        t_undo = time.monotonic() - t0
        load.phase = "after"
        time.sleep(1)
        load.stop()

        for phase, secs in (("set image :v2 → rolled out", t_v2), ("set image :v10 → stuck (3/4, 2, 3)", t_v10),
                            ("rollout undo → rolled out", t_undo)):
            c = load.counts.get(phase, Counts())
            rows.append((phase, f"{secs:.2f} s", f"{c.ok} served, {c.failed} failed"))
        warm = load.counts.get("warm-up", Counts())
        rows.append(("steady load (2 s warm-up)", "", f"{warm.ok} served, {warm.failed} failed"))
    finally:
        cl.stop()

    width = max(len(r[0]) for r in rows)
    print(f"\nkubelite tutorial benchmark ({args.clients} load clients, {os.cpu_count()} CPUs)\n")
    print(f"{'step':<{width}}  {'wall time':>9}  requests through the NodePort")
    for name, secs, reqs in rows:
        print(f"{name:<{width}}  {secs:>9}  {reqs}")
    for phase, err in load.errors.items():
        print(f"  first failure during {phase}: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
