"""Weighted canary and blue/green rollouts on a full cluster, through a NodePort Service.

Real bootcamp pods answer ``v=1`` / ``v=2``; the share of replies from the canary is the
share of requests the proxy gave it (nftables path as root, userspace proxy too).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest

from tests.conftest import Server, create_namespace
from tests.test_services_rollout import CONTAINER, V1, V2, V10, Load, expose, http_get, node_ip, rolled_out

PREFIX = "rollout.kubelite.dev/"
KERNEL = os.geteuid() == 0 and shutil.which("nft") is not None


@pytest.fixture
def cluster(clusters):
    return clusters("nftables" if KERNEL else "userspace")


def annotations(k: Server, ns: str) -> dict:
    return k.kjson("-n", ns, "get", "deployment", "web")["metadata"].get("annotations") or {}


def events(k: Server, ns: str, reason: str) -> list[str]:
    items = k.kjson("-n", ns, "get", "events", "--field-selector", f"reason={reason}")["items"]
    return [e["message"] for e in sorted(items, key=lambda e: e.get("firstTimestamp") or e["metadata"]["name"])]


def versions(host: str, port: int, n: int, clients: int = 8) -> list[int]:
    """``n`` requests over ``clients`` concurrent connections at a time; the versions that answered."""
    async def run() -> list[int]:
        left = n
        out: list[int] = []

        async def client() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                out.append((await http_get(host, port, 20.0))[1])
        await asyncio.gather(*(client() for _ in range(clients)))
        return out
    return asyncio.run(run())


def canary_ready(k: Server, ns: str, weight: int, pods: int):
    """The canary published ``weight`` and its ReplicaSet has ``pods`` available."""
    ann = annotations(k, ns)
    h = ann.get(PREFIX + "canary-revision")
    if not h or f"{h}={weight}" not in ann.get(PREFIX + "traffic-weights", ""):
        return False
    rs = k.kjson("-n", ns, "get", "replicaset", f"web-{h}")
    return rs["spec"]["replicas"] == pods and (rs["status"].get("availableReplicas") or 0) == pods


def server_up(k: Server) -> bool:
    """True while the server process runs; raises (with its exit code) once it has exited.

    The NodePort once stopped answering at this point because the whole server had died: the
    process runtime's output pump closed a descriptor number twice (test_process_pump.py)."""
    code = k.proc.poll()
    if code is not None:
        raise AssertionError(f"the server (pid {k.proc.pid}) exited with code {code}")
    return True


def opt_in(k: Server, ns: str, *pairs: str) -> None:
    k.kubectl("-n", ns, "annotate", "deployment/web", *(PREFIX + p for p in pairs), check=True)
    # The rollout to come needs a completed revision to hold on to (and to roll back to).
    k.wait_for(lambda: annotations(k, ns).get(PREFIX + "last-complete"), what="last-complete recorded")


@pytest.mark.parametrize("mode", ["nftables", "userspace"])
def test_canary_at_20_percent_receives_20_percent_of_requests(clusters, request, mode):
    if mode == "nftables" and not KERNEL:
        pytest.skip("the nftables data path needs root and nft")
    k = clusters(mode)
    ns = create_namespace(k, request)
    port = expose(k, ns, 4)
    host = node_ip(k)
    opt_in(k, ns, "strategy=canary", "canary-steps=20%,pause,50%,pause 2s,100%")
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V2}", check=True)
    k.wait_for(lambda: canary_ready(k, ns, 20, 1), timeout=60, what="canary at 20% with 1 pod available")
    k.wait_for(lambda: k.kjson("-n", ns, "get", "deployment", "web")["spec"].get("paused"),
               what="the indefinite pause pausing the Deployment")
    # The old ReplicaSet stays at full size while the canary serves its share.
    pods = k.kjson("-n", ns, "get", "pods", "-l", "app=web")["items"]
    assert len([p for p in pods if not p["metadata"].get("deletionTimestamp")]) == 5

    got = versions(host, port, 5000)
    share = got.count(2) / len(got)
    assert len(got) == 5000 and set(got) == {1, 2}
    assert 0.17 <= share <= 0.23, f"canary share {share:.3f} on the {mode} path"

    steps = events(k, ns, "CanaryStep")
    assert any(m.startswith("Canary step 1/5 (20%): 20% of traffic to web-") for m in steps), steps
    assert any(m.startswith("Canary step 2/5 (pause): holding at 20%") and "kubectl rollout resume" in m
               for m in steps), steps
    describe = k.kubectl("-n", ns, "describe", "deployment", "web", check=True).stdout
    assert "CanaryStep" in describe

    # Resume: 50 %, a timed pause, then 100 % and the old ReplicaSet goes.
    k.kubectl("-n", ns, "rollout", "resume", "deployment/web", check=True)
    rolled_out(k, ns)
    k.wait_for(lambda: server_up(k) and set(versions(host, port, 40)) == {2}, what="only v=2 answering")
    steps = events(k, ns, "CanaryStep")
    for words in ("Canary step 3/5 (50%): 50% of traffic", "Canary step 4/5 (pause 2s): holding at 50%",
                  "Canary step 5/5 (100%): 100% of traffic"):
        assert any(m.startswith(words) for m in steps), (words, steps)
    rss = {r["metadata"]["name"]: r["spec"]["replicas"]
           for r in k.kjson("-n", ns, "get", "replicasets")["items"]}
    assert sorted(rss.values()) == [0, 4], rss
    # The bookkeeping and the weights are gone once the rollout is over.
    k.wait_for(lambda: not any(a in annotations(k, ns) for a in (PREFIX + "traffic-weights",
                                                                   PREFIX + "canary-step")),
               timeout=120, what="canary state cleared once the old pods are gone")


def test_canary_timed_steps_advance_on_their_own(cluster, request):
    k = cluster
    ns = create_namespace(k, request)
    expose(k, ns, 2)
    opt_in(k, ns, "strategy=canary", "canary-steps=50%,pause 1s,100%")
    start = time.monotonic()
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V2}", check=True)
    rolled_out(k, ns)
    steps = events(k, ns, "CanaryStep")
    assert [m.split(":")[0] for m in steps] == ["Canary step 1/3 (50%)", "Canary step 2/3 (pause 1s)",
                                                "Canary step 3/3 (100%)"], steps
    assert time.monotonic() - start >= 1.0
    assert k.kjson("-n", ns, "get", "deployment", "web")["spec"].get("paused") is None


def test_blue_green_switches_all_traffic_at_once_with_no_failed_request(cluster, request):
    k = cluster
    ns = create_namespace(k, request)
    port = expose(k, ns, 3)
    host = node_ip(k)
    opt_in(k, ns, "strategy=blue-green")
    k.wait_for(lambda: set(versions(host, port, 12)) == {1}, what="v1 answering")
    with Load(host, port) as load:
        k.wait_for(lambda: len(load.replies) >= 50, what="load flowing")
        k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V2}", check=True)
        rolled_out(k, ns)
        done = time.monotonic()
        k.wait_for(lambda: len(load.since(done)) >= 100, what="load after the switch")
    assert load.failures == [], load.failures[:10]
    assert {v for t, _, v in load.replies if t >= done} == {2}
    switched = events(k, ns, "BlueGreenSwitch")
    assert len(switched) == 1 and "all 3 new pods are available" in switched[0], switched
    # Before the switch the green pods, though Ready, got nothing: no v=1 after the first v=2
    # beyond requests already under way when the kernel's rules changed.
    ordered = sorted(load.replies)
    first_v2 = next(t for t, _, v in ordered if v == 2)
    assert not [t for t, _, v in ordered if v == 1 and t > first_v2 + 1.0]


def test_erroring_canary_is_rolled_back_automatically(cluster, request):
    k = cluster
    ns = create_namespace(k, request)
    port = expose(k, ns, 3)
    host = node_ip(k)
    opt_in(k, ns, "strategy=canary", "canary-steps=20%,pause,100%")
    with Load(host, port) as load:
        k.wait_for(lambda: len(load.replies) >= 50, what="load flowing")
        k.kubectl("-n", ns, "set", "image", "deployment/web", f"{CONTAINER}={V10}", check=True)
        k.wait_for(lambda: annotations(k, ns).get(PREFIX + "rolled-back-from"), timeout=60,
                   what="an automatic rollback")
        rolled_out(k, ns)
        done = time.monotonic()
        k.wait_for(lambda: len(load.since(done)) >= 50, what="load after the rollback")
    assert load.failures == [], load.failures[:10]
    assert {v for _, _, v in load.replies} == {1}
    d = k.kjson("-n", ns, "get", "deployment", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    rolled = events(k, ns, "AutoRollback")
    assert rolled and ("ErrImagePull" in rolled[0] or "ImagePullBackOff" in rolled[0]), rolled
    rss = k.kjson("-n", ns, "get", "replicasets")["items"]
    assert sorted(r["spec"]["replicas"] for r in rss) == [0, 3]
    k.wait_for(lambda: PREFIX + "traffic-weights" not in annotations(k, ns), timeout=120,
               what="weights cleared once the canary's pods are gone")
