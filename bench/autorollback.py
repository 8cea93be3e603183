"""Benchmark: from a failing new pod to an automatic rollback that has completed.

A fresh `kubelite server --runtime fake`; a Deployment with
`rollout.kubelite.dev/auto-rollback: "true"` rolled out on v1 then v2; then, per round,
a bad change — the tutorial's `:v10` (image pull failure) or a container that exits 1
(`fake.kubelite.dev/exit-code`, a crash loop).  The script polls the API every 20 ms and
reports, from the moment the change was written:

- *first failing pod*: a new pod shows ErrImagePull / ImagePullBackOff / CrashLoopBackOff;
- *rolled back*: the Deployment's template is v2's again;
- *complete*: the Deployment is back to the v2 rollout completed (every replica updated
  and available, no pod of the bad revision left).

The issue's goal is ≤ 10 s from the failing pod to complete with the default thresholds
(upstream: 600 s of progress deadline, then a person). Not run by CI:

    python bench/autorollback.py [--replicas 4] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from kubelite.api.resources import DEPLOYMENTS, PODS  # noqa: E402
from kubelite.client.rest import Client  # noqa: E402
from kubelite.controllers.deployment import autorollback, util  # noqa: E402
from tests.conftest import Server, start_server  # noqa: E402

os.environ["KUBELITE_OFFLINE"] = "1"  # the network rule: no registry off this machine

V1 = "gcr.io/google-samples/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"
V10 = "gcr.io/google-samples/kubernetes-bootcamp:v10"
NAME = "bench"
FAILING = {"ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff"}


def image(d: dict) -> str:
    return d["spec"]["template"]["spec"]["containers"][0]["image"]


def complete_on_v2(d: dict, replicas: int) -> bool:
    st = d.get("status") or {}
    return (image(d) == V2 and "annotations" not in d["spec"]["template"].get("metadata", {})
            and int(st.get("observedGeneration") or 0) >= d["metadata"]["generation"]
            and util.deployment_complete(d, st) and util.replicas(d) == replicas)


async def round_(client: Client, srv: Server, ns: str, kind: str, replicas: int) -> tuple[float, float, float]:
    """One bad change; seconds to (first failing pod, rolled back, complete)."""
    if kind == "image":
        args = ["set", "image", f"deployment/{NAME}", f"kubernetes-bootcamp={V10}"]
    else:
        patch = {"spec": {"template": {"metadata": {"annotations": {"fake.kubelite.dev/exit-code": "1"}}}}}
        args = ["patch", "deployment", NAME, "--type=merge", "-p", json.dumps(patch)]
    deps, pods = client.resource(DEPLOYMENTS), client.resource(PODS)
    t0 = time.monotonic()
    srv.kubectl("-n", ns, *args, check=True)
    failing = rolled = done = float("nan")
    deadline = t0 + 300
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        if failing != failing:  # nan: not seen yet
            for p in (await pods.list(ns))["items"]:
                if autorollback.pod_failure(p) is not None:
                    failing = now
                    break
        d = await deps.get(NAME, ns)
        if rolled != rolled and image(d) == V2 and "annotations" not in d["spec"]["template"].get("metadata", {}):
            rolled = now
        if rolled == rolled and complete_on_v2(d, replicas):
            live = [p for p in (await pods.list(ns))["items"] if not p["metadata"].get("deletionTimestamp")]
            if all(p["spec"]["containers"][0]["image"] == V2 and not (p["metadata"].get("annotations") or {})
                   .get("fake.kubelite.dev/exit-code") for p in live):
                done = now
                break
        await asyncio.sleep(0.02)
    return failing, rolled, done


async def run(srv: Server, replicas: int, rounds: int) -> list[tuple[str, float, float, float]]:
    ns = "bench-autorollback"
    srv.kubectl("create", "namespace", ns, check=True)
    srv.kubectl("-n", ns, "create", "deployment", NAME, f"--image={V1}", f"--replicas={replicas}", check=True)
    srv.kubectl("-n", ns, "annotate", "deployment", NAME, f"{autorollback.AUTO_ROLLBACK}=true", check=True)
    srv.kubectl("-n", ns, "rollout", "status", f"deployment/{NAME}", "--timeout=120s", timeout=150, check=True)
    srv.kubectl("-n", ns, "set", "image", f"deployment/{NAME}", f"kubernetes-bootcamp={V2}", check=True)
    srv.kubectl("-n", ns, "rollout", "status", f"deployment/{NAME}", "--timeout=120s", timeout=150, check=True)
    client = Client(srv.client_config())
    out = []
    try:
        for i in range(rounds):
            for kind in ("image", "crash"):
                f, r, c = await round_(client, srv, ns, kind, replicas)
                out.append((f"{kind} #{i + 1}", f, r, c))
    finally:
        await client.close()
    return out


def main() -> int:
    """Run the rounds and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-bench-autorollback-"))
    srv = start_server(tmp, "--runtime", "fake")
    try:
        rows = asyncio.run(run(srv, args.replicas, args.rounds))
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'change':<10} {'failing pod':>12} {'rolled back':>12} {'complete':>10} {'failing→complete':>17}")
    for label, f, r, c in rows:
        print(f"{label:<10} {f:>11.2f}s {r:>11.2f}s {c:>9.2f}s {c - f:>16.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
