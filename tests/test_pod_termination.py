"""Pod termination on the node, at unit level: the drain wait has its own bound and does not
eat the grace period that preStop hooks and SIGTERM are owed."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubelite.node import podworker
from kubelite.node.podworker import DRAIN_WAIT_MAX, PodWorker, drain_wait_bound
from kubelite.node.runtime.base import ContainerHandle


class FakeClock:
    """A monotonic clock that moves only when the fakes below say time passed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class Recorder:
    def event(self, *args: Any, **kwargs: Any) -> None:
        pass


class Runtime:
    def __init__(self) -> None:
        self.stop_graces: list[float] = []

    async def stop_container(self, handle: ContainerHandle, grace: float) -> None:
        self.stop_graces.append(grace)

    async def remove_sandbox(self, sandbox: Any) -> None:
        pass


class DeadProxyAgent:
    """An agent whose drain wait always runs to its timeout, as with a dead proxy's live Lease."""

    node_ip = "127.0.0.1"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.recorder = Recorder()
        self.runtime = Runtime()
        self.drain_timeouts: list[float] = []
        self.deleted = False

    def services_for(self, pod: dict) -> list[dict]:
        # A Service without a selector in the pod's namespace: its endpoints may name the pod,
        # so termination waits for the proxies to drain it.
        return [{"metadata": {"name": "manual", "namespace": "default"}, "spec": {}}]

    async def write_status(self, pod: dict, status: dict) -> None:
        pass

    async def wait_drained(self, pod: dict, timeout: float) -> None:
        self.drain_timeouts.append(timeout)
        self.clock.now += timeout  # nobody ever reports the pod drained

    async def delete_pod(self, pod: dict) -> None:
        self.deleted = True


def _pod(grace: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u-1",
                         "deletionTimestamp": "2025-01-01T00:00:00Z", "deletionGracePeriodSeconds": grace},
            "spec": {"terminationGracePeriodSeconds": grace,
                     "containers": [{"name": "c", "image": "x",
                                     "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}]}}


async def _terminate(monkeypatch, grace: int) -> tuple[DeadProxyAgent, list[float]]:
    clock = FakeClock()
    monkeypatch.setattr(podworker.time, "monotonic", clock.monotonic)
    agent = DeadProxyAgent(clock)
    w = PodWorker(agent, _pod(grace))  # the fake has what termination uses
    w.handles["c"] = ContainerHandle(id="c-1", name="c", sandbox_uid="u-1", started_at=datetime.now(UTC), log_path="")
    hook_limits: list[float] = []

    async def run_hook(cs: Any, spec: Any, hook: Any, limit: float) -> tuple[bool, str]:
        hook_limits.append(limit)
        return True, ""
    monkeypatch.setattr(w, "_run_hook", run_hook)
    await w._terminate()
    assert agent.deleted
    return agent, hook_limits


async def test_dead_proxy_lease_leaves_prestop_and_sigterm_their_whole_grace_period(monkeypatch):
    agent, hook_limits = await _terminate(monkeypatch, 30)
    # The drain wait ran out (the dead proxy never answered) after its own bound, not the grace period ...
    assert agent.drain_timeouts == [DRAIN_WAIT_MAX]
    # ... and preStop and SIGTERM still had all 30 seconds.
    assert hook_limits == [30.0]
    assert agent.runtime.stop_graces == [30.0]


async def test_short_grace_period_bounds_the_drain_wait_too(monkeypatch):
    agent, hook_limits = await _terminate(monkeypatch, 2)
    assert agent.drain_timeouts == [2.0]
    assert hook_limits == [2.0] and agent.runtime.stop_graces == [2.0]


def test_drain_wait_bound():
    assert drain_wait_bound(0) == 0.0
    assert drain_wait_bound(1) == 1.0
    assert drain_wait_bound(3600) == DRAIN_WAIT_MAX
    assert drain_wait_bound(-5) == 0.0
