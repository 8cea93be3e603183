"""Benchmark: the scheduler's own cost per placement, without a server.

The scheduler runs against tests/fakeapi.py (binding sets spec.nodeName at once and the
informers hear of it synchronously), so the time measured is filtering, scoring and the
cache bookkeeping alone: N pods placed one after another over K nodes. Not run by CI:

    python bench/scheduler.py [--pods 1000] [--nodes 10]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakeapi import FakeAPI, FakeResource, RecordingRecorder  # noqa: E402

from kubelite.api.resources import NODES, PODS, ResourceInfo  # noqa: E402
from kubelite.scheduler.scheduler import Scheduler  # noqa: E402

Obj = dict[str, Any]


class BindingPods(FakeResource):
    """pods/binding on the fake API: sets spec.nodeName."""

    async def create_subresource(self, name: str, namespace: str, subresource: str, body: Obj) -> Obj:
        pod = self.api.get_obj("pods", namespace, name)
        pod["spec"]["nodeName"] = body["target"]["name"]
        self.api.update(self.info, pod)
        return {"kind": "Status", "status": "Success"}


class BindingAPI(FakeAPI):
    def resource(self, info: ResourceInfo) -> FakeResource:
        self.infos[info.plural] = info
        return BindingPods(self, info) if info.plural == "pods" else FakeResource(self, info)


async def run(pods: int, nodes: int) -> tuple[float, dict[str, int]]:
    api = BindingAPI()
    for i in range(nodes):
        api.create(NODES, {"metadata": {"name": f"n{i:03d}"}, "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]}}, "")
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-1", "controller": True}]
    for i in range(pods):
        api.create(PODS, {"metadata": {"name": f"p{i}", "ownerReferences": owner},
                          "spec": {"containers": [{"name": "c", "image": "x"}]}}, "default")
    try:
        s = Scheduler(api.client, api.factory, recorder=RecordingRecorder())
    except TypeError:  # an older Scheduler without injectable informers
        raise SystemExit("this kubelite's Scheduler cannot run on the fake API") from None
    t0 = time.perf_counter()
    for i in range(pods):
        await s.sync(f"default/p{i}")
    took = time.perf_counter() - t0
    per_node: dict[str, int] = {}
    for p in api.items("pods"):
        n = p["spec"].get("nodeName") or "(unbound)"
        per_node[n] = per_node.get(n, 0) + 1
    return took, per_node


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=10)
    args = ap.parse_args()
    took, per_node = asyncio.run(run(args.pods, args.nodes))
    print(f"{args.pods} pods over {args.nodes} nodes: {took:.2f} s, {args.pods / took:.0f} placements/s "
          f"({took / args.pods * 1000:.2f} ms each, fake API binding included)")
    print("pods per node:", " ".join(f"{n}={c}" for n, c in sorted(per_node.items())))


if __name__ == "__main__":
    main()
