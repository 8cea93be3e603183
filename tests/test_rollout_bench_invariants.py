"""bench/rollout.py's invariant checker on made-up cluster states: each broken invariant is
reported (once), and a healthy state is not."""
from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kubelite.api import meta

Obj = dict[str, Any]
BENCH = Path(__file__).resolve().parent.parent / "bench" / "rollout.py"


@pytest.fixture
def rollout(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/rollout.py as a module (its environment and sys.path changes undone afterwards)."""
    monkeypatch.setenv("KUBELITE_OFFLINE", "1")
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("bench_rollout", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def node(name: str, pods: int) -> Obj:
    return {"metadata": {"name": name}, "status": {"allocatable": {"pods": str(pods)}}}


def rs(uid: str) -> Obj:
    return {"metadata": {"name": f"rs-{uid}", "uid": uid}}


def pod(name: str, *, owner: str = "rs1", node: str = "", ready: bool = True, deleted_ago: float | None = None,
        too_many: bool = False) -> Obj:
    md: Obj = {"name": name, "uid": f"u-{name}",
               "ownerReferences": [{"kind": "ReplicaSet", "name": f"rs-{owner}", "uid": owner, "controller": True}]}
    if deleted_ago is not None:
        md["deletionTimestamp"] = meta.rfc3339(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=deleted_ago))
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    if too_many:
        conds.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                      "message": "0/1 nodes are available: 1 Too many pods."})
    return {"metadata": md, "spec": {"nodeName": node} if node else {},
            "status": {"phase": "Running" if node else "Pending", "conditions": conds}}


def state(rollout: ModuleType, pods: list[Obj], nodes: list[Obj]) -> Any:
    cw = rollout.ClusterWatch()
    cw.on_rs("ADDED", rs("rs1"))
    for n in nodes:
        cw.on_node(n)
    for p in pods:
        cw.on_pod("ADDED", p)
    return cw


def test_a_healthy_cluster_breaks_nothing(rollout: ModuleType) -> None:
    cw = state(rollout, [pod(f"p{i}", node="n1") for i in range(3)] + [pod("going", node="n1", deleted_ago=1)],
               [node("n1", 4)])
    cw.check(0.0)
    cw.check(100.0)
    assert cw.violations == []
    assert not cw.settled(3)  # one is still Terminating


def test_each_broken_invariant_is_reported_once(rollout: ModuleType) -> None:
    pods = [pod("a", node="n1"), pod("b", node="n1"), pod("c", node="n1"),  # 3 on a node of 2
            pod("stuck", node="n2", deleted_ago=600),
            pod("orphan", owner="gone"),
            pod("waiting", too_many=True)]
    cw = state(rollout, pods, [node("n1", 2), node("n2", 10)])
    cw.check(0.0)
    cw.check(rollout.ORPHAN_GRACE + rollout.PHANTOM_GRACE + 1)
    cw.check(rollout.ORPHAN_GRACE + rollout.PHANTOM_GRACE + 2)
    text = "\n".join(cw.violations)
    assert len(cw.violations) == 4, text
    assert "node n1 holds 3 active pods, allocatable 2" in text
    assert "pod stuck Terminating" in text
    assert "pod orphan" in text and "rs-gone" in text
    assert "Too many pods' for" in text and "slots are free" in text
