"""percentageOfNodesToScore: in a big cluster a placement filters nodes only until it has
found enough feasible ones (upstream's adaptive number), and the next placement carries on
from where the last one stopped, so every node gets its turn."""
from __future__ import annotations

from typing import Any

import pytest
from fakeapi import RecordingRecorder
from test_scheduler_cache import add_node, add_pod, make, node_of

from kubelite.scheduler import plugins
from kubelite.scheduler import scheduler as sched
from kubelite.scheduler.scheduler import num_feasible_nodes_to_find

Obj = dict[str, Any]


@pytest.fixture(autouse=True)
def fresh_request_cache() -> None:
    """Parsed requests and allocatable are cached by resourceVersion; every FakeAPI starts again at 1."""
    plugins._REQUESTS.clear()
    plugins._ALLOCATABLE.clear()


@pytest.mark.parametrize(("nodes", "percentage", "want"), [
    (0, 0, 0), (10, 0, 10), (99, 0, 99),            # small clusters: every node
    (100, 0, 100), (250, 0, 120), (1000, 0, 420),   # 50 % less 1 % per 125 nodes, never under 100
    (5000, 0, 500), (6000, 0, 300),                 # at least 5 %
    (2000, 10, 200), (500, 1, 100), (300, 100, 300), (300, 150, 300),  # a configured percentage
])
def test_num_feasible_nodes_to_find(nodes: int, percentage: int, want: int) -> None:
    assert num_feasible_nodes_to_find(nodes, percentage) == want


def count_filtered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the node of every filter pass (the first filter runs once per node visited)."""
    seen: list[str] = []
    first = sched.FILTERS[0]

    def counting(n: plugins.NodeInfo, pod: Obj) -> str | None:
        seen.append(n.name)
        return first(n, pod)
    monkeypatch.setattr(sched, "FILTERS", [counting, *sched.FILTERS[1:]])
    return seen


async def test_a_big_cluster_filters_a_sample_and_takes_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    api, s = make()
    names = [f"n{i:03d}" for i in range(250)]
    for n in names:
        add_node(api, n)
    seen = count_filtered(monkeypatch)
    visited: list[set[str]] = []
    for i in range(3):
        add_pod(api, f"p{i}")
        seen.clear()
        await s.sync(f"default/p{i}")
        assert node_of(api, f"p{i}") in seen
        visited.append(set(seen))
    # 250 nodes: 120 filtered per placement, each placement starting after the last one's.
    assert [len(v) for v in visited] == [120, 120, 120]
    assert not visited[0] & visited[1]
    assert visited[0] | visited[1] | visited[2] == set(names)


async def test_a_small_cluster_filters_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    api, s = make()
    for i in range(40):
        add_node(api, f"n{i:02d}")
    seen = count_filtered(monkeypatch)
    add_pod(api, "p")
    await s.sync("default/p")
    assert len(seen) == 40 and node_of(api, "p") is not None


async def test_a_pod_that_fits_nowhere_reports_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sampling stops at enough feasible nodes, never early when none fits: the message counts all."""
    api, s = make()
    for i in range(250):
        add_node(api, f"n{i:03d}", cpu="1")
    seen = count_filtered(monkeypatch)
    add_pod(api, "big", requests={"cpu": "2"})
    await s.sync("default/big")
    assert len(seen) == 250 and node_of(api, "big") is None
    assert isinstance(s.recorder, RecordingRecorder)
    [msg] = s.recorder.messages("FailedScheduling")
    assert msg.startswith("0/250 nodes are available: 250 Insufficient cpu.")
