"""bench/workloads.py at a small size: the StatefulSet (OrderedReady, Parallel) and DaemonSet
(maxUnavailable 1, maxSurge 1) modes run on a fake-runtime cluster of two nodes with every
invariant holding and a summary table that parses; and its checkers flag made-up breaches."""
from __future__ import annotations

import asyncio
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import Server, create_namespace, start_server
from nodeharness import start_agent, stop_proc

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "workloads.py"
Obj = dict[str, Any]
ROW = re.compile(r"^(\S.*?)\s{2,}(\d+\.\d+)$")


@pytest.fixture(scope="module")
def wl() -> Iterator[ModuleType]:
    """bench/workloads.py as a module (its sys.path, environment and module changes undone afterwards)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBELITE_OFFLINE", "1")
        mp.setattr(sys, "path", list(sys.path))
        spec = importlib.util.spec_from_file_location("bench_workloads", BENCH)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        mp.setitem(sys.modules, "bench_workloads", mod)  # its dataclass looks its module up there
        spec.loader.exec_module(mod)
        yield mod
        sys.modules.pop("rollout", None)


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory, wl: ModuleType) -> Iterator[tuple[Server, list[str]]]:
    """A fake-runtime server plus one joined fake agent; (server, node names)."""
    tmp = tmp_path_factory.mktemp("wlbench")
    srv = start_server(tmp, "--runtime", "fake")
    agent = start_agent(srv, tmp, "n2", "127.0.0.2")
    try:
        nodes = srv.wait_for(lambda: len(wl.ready_nodes(srv)) == 2 and wl.ready_nodes(srv), 60, what="two Ready nodes")
        yield srv, nodes
    finally:
        stop_proc(agent)
        srv.stop()


def summary(out: str) -> dict[str, float]:
    """The rows of the last "step / seconds" table printed."""
    lines = out.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("step ") and line.rstrip().endswith("seconds"))
    rows = {}
    for line in lines[start + 2:]:
        m = ROW.match(line)
        if not m:
            break
        rows[m.group(1)] = float(m.group(2))
    return rows


@pytest.mark.parametrize("kind,options", [
    ("statefulset", {"pod_management": "OrderedReady"}),
    ("statefulset", {"pod_management": "Parallel"}),
    ("daemonset", {"max_surge": 0}),
    ("daemonset", {"max_surge": 1}),
], ids=["sts-orderedready", "sts-parallel", "ds-maxunavailable", "ds-maxsurge"])
def test_workload_rollout_bench_holds_its_invariants(request: pytest.FixtureRequest, wl: ModuleType,
                                                     two_nodes: tuple[Server, list[str]], kind: str,
                                                     options: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    srv, nodes = two_nodes
    ns = create_namespace(srv, request, "wl")
    sc = wl.scenario(kind, 3, nodes, **options)
    results, violations = asyncio.run(wl.run(srv, sc, ns, settle=60, timeout=60))
    assert violations == []
    assert wl.report(sc, len(nodes), results, violations)
    rows = summary(capsys.readouterr().out)
    n = 3 if kind == "statefulset" else len(nodes)
    first = f"scale 0 → {n}: all Ready" if kind == "statefulset" else f"create: a Ready pod on each of {n} nodes"
    assert list(rows) == [first, f"roll {n} v1 → v2: rolled out", f"roll {n}: every old pod deleted"]
    assert all(s >= 0 for s in rows.values())
    if kind == "statefulset":
        assert sc.invariants.replaced == [2, 1, 0]  # the checker did see each replacement
    else:
        assert sc.invariants.pods and all(wl.image_of(p) == wl.rb.V2 for p in sc.invariants.pods.values())


def test_workloads_command_line_exits_zero_with_its_table() -> None:
    p = subprocess.run([sys.executable, str(BENCH), "--kind", "statefulset", "--replicas", "2", "--timeout", "60",
                        "--settle", "60"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert summary(p.stdout)["scale 0 → 2: all Ready"] >= 0
    assert "invariants held (StatefulSet OrderedReady)" in p.stdout


def pod(name: str, *, image: str = "v1", node: str = "", ready: bool = True, deleting: bool = False) -> Obj:
    """A made-up pod as the watch would show it."""
    md: Obj = {"name": name, "uid": f"{name}-{image}"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": md, "spec": {"nodeName": node, "containers": [{"name": "c", "image": image}]},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_statefulset_checker_flags_order_and_unavailability(wl: ModuleType) -> None:
    inv = wl.StatefulSetInvariants(3, True, "v1")
    inv.on_pod("ADDED", pod("web-0", ready=False))
    inv.on_pod("ADDED", pod("web-1", ready=False))
    assert inv.violations == ["web-1 created while web-0 was not Ready (OrderedReady)"]
    parallel = wl.StatefulSetInvariants(3, False, "v1")
    for i in range(3):
        parallel.on_pod("ADDED", pod(f"web-{i}", ready=False))
        parallel.on_pod("MODIFIED", pod(f"web-{i}"))
    parallel.updating = True
    parallel.on_pod("MODIFIED", pod("web-0", deleting=True))  # lowest first: out of order only after another
    parallel.on_pod("DELETED", pod("web-0", deleting=True))
    parallel.on_pod("ADDED", pod("web-0", image="v2", ready=False))
    parallel.on_pod("MODIFIED", pod("web-1", deleting=True))
    assert parallel.violations == [
        "update replaced web-1 after web-0 (not highest ordinal first)",
        "2 ordinals without a Ready pod during the update (0, 1), maxUnavailable 1"]
    parallel.final("v2")
    assert any("expected each of 0..2 once" in v for v in parallel.violations)


def test_daemonset_checker_flags_unavailable_and_surged_nodes(wl: ModuleType) -> None:
    inv = wl.DaemonSetInvariants(["a", "b", "c"], 1, 0)
    for n in "abc":
        inv.on_pod("ADDED", pod(f"ds-{n}", node=n))
    inv.updating = True
    inv.on_pod("MODIFIED", pod("ds-a", node="a", deleting=True))
    assert inv.violations == []
    inv.on_pod("MODIFIED", pod("ds-b", node="b", deleting=True))
    inv.on_pod("ADDED", pod("ds-c", image="v2", node="c", ready=False))
    assert inv.violations == ["2 nodes without a Ready pod during the update (a, b), maxUnavailable 1",
                              "1 nodes holding more than one pod during the update (c), maxSurge 0"]
    inv.final("v2")
    assert "node a holds 1 pod(s) after the rollout, want one Ready pod of v2" in inv.violations
