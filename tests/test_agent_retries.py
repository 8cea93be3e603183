"""The node agent at scale, against the fake API: API writes retried with back-off (429
with Retry-After, 5xx, dropped connections), the final DELETE included; housekeeping
that terminates deleting pods nobody is working on, starts bound pods without a worker,
and stops a pod stuck past its grace period."""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from fakeapi import FakeAPI, until
from test_podworker_host import BOOTCAMP, RecordingHost, _pod

from kubelite.api import meta
from kubelite.api.resources import PODS
from kubelite.client import retry
from kubelite.client.errors import Forbidden, NotFound, ServiceUnavailable, TooManyRequests
from kubelite.node.agent import Agent, AgentOptions
from kubelite.node.podworker import PodWorker
from kubelite.node.runtime.fake import FakeRuntime

Obj = dict[str, Any]
NODE = "n1"


def too_many(after: int = 0) -> TooManyRequests:
    details = {"retryAfterSeconds": after} if after else None
    return TooManyRequests(429, "TooManyRequests", "Too many requests, please try again later.", details)


# -- with_retries -----------------------------------------------------------------------------
class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException):
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_writes_are_retried_on_429_5xx_and_connection_errors() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
    call = Flaky(too_many(3), ServiceUnavailable(503, "ServiceUnavailable", "busy"), ConnectionResetError(),
                 TimeoutError())
    assert await retry.with_retries("write", call, sleep=sleep) == "ok"
    assert call.calls == 5
    assert slept[0] >= 3  # Retry-After honoured
    assert all(s > 0 for s in slept)


@pytest.mark.parametrize("err", [NotFound(404, "NotFound", "gone"), Forbidden(403, "Forbidden", "no")])
async def test_other_errors_are_not_retried(err: Exception) -> None:
    call = Flaky(err)
    with pytest.raises(type(err)):
        await retry.with_retries("write", call, sleep=lambda s: asyncio.sleep(0))
    assert call.calls == 1


async def test_retries_stop_after_the_attempts_given() -> None:
    call = Flaky(*(too_many() for _ in range(5)))
    with pytest.raises(TooManyRequests):
        await retry.with_retries("write", call, attempts=3, sleep=lambda s: asyncio.sleep(0))
    assert call.calls == 3


def test_backoff_grows_and_is_capped() -> None:
    assert retry.backoff(ConnectionResetError(), 0) <= retry.BASE_DELAY
    assert retry.backoff(ConnectionResetError(), 30) <= retry.MAX_DELAY
    assert retry.backoff(too_many(7), 0) >= 7


# -- the pod worker's status writer -----------------------------------------------------------
class FlakyStatusHost(RecordingHost):
    """Status writes fail with a dropped connection, then a 429, then work."""

    def __init__(self, runtime: FakeRuntime) -> None:
        super().__init__(runtime)
        self.failures: list[BaseException] = [ConnectionResetError("connection reset by peer"), too_many()]

    async def write_status(self, pod: Obj, status: Obj) -> None:
        if self.failures:
            raise self.failures.pop(0)
        await super().write_status(pod, status)


async def test_status_writes_survive_a_dropped_connection(tmp_path) -> None:
    host = FlakyStatusHost(FakeRuntime(str(tmp_path)))
    worker = PodWorker(host, _pod())
    worker.start()
    try:
        await until(lambda: any(s["phase"] == "Running" for s in host.statuses), what="a Running status written")
        assert not host.failures
    finally:
        await worker.kill_now()


# -- the agent -------------------------------------------------------------------------------
class FlakyAPI(FakeAPI):
    """A FakeAPI whose pod DELETEs (and Lease creates) fail with the queued errors first."""

    def __init__(self) -> None:
        super().__init__()
        self.delete_errors: list[Exception] = []
        self.delete_calls = 0
        self.create_errors: list[Exception] = []  # for Leases

    def create(self, info: Any, obj: Obj, namespace: str) -> Obj:
        if info.plural == "leases" and self.create_errors:
            raise self.create_errors.pop(0)
        return super().create(info, obj, namespace)

    def delete(self, info: Any, name: str, namespace: str) -> Obj:
        if info.plural == "pods":
            self.delete_calls += 1
            if self.delete_errors:
                raise self.delete_errors.pop(0)
        return super().delete(info, name, namespace)


def bound_pod(api: FakeAPI, name: str, grace: int = 0) -> Obj:
    p = _pod()
    p["metadata"] = {"name": name}
    p["spec"]["nodeName"] = NODE
    p["spec"]["terminationGracePeriodSeconds"] = grace
    return api.create(PODS, p, "default")


def mark_deleting(api: FakeAPI, name: str, *, ago: float = 0.0, silently: bool = False) -> Obj:
    """What the API server does on DELETE with a grace period: set deletionTimestamp.

    ``silently``: the informer's cache changes but no handler hears of it (a missed event)."""
    obj = api.objects["pods"][f"default/{name}"]
    grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=grace - ago)
    obj["metadata"]["deletionTimestamp"] = meta.rfc3339(when)
    obj["metadata"]["deletionGracePeriodSeconds"] = grace
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1000)
    if silently:
        api.informers["pods"]._cache[f"default/{name}"] = dict(obj)
    else:
        api._emit("update", "pods", "MODIFIED", obj)
    return obj


def gone(api: FakeAPI, name: str) -> bool:
    return f"default/{name}" not in api.objects.get("pods", {})


@pytest.fixture
async def agent(tmp_path):
    api = FlakyAPI()
    opts = AgentOptions(node_name=NODE, data_dir=str(tmp_path), runtime="fake", fake_delay=0.0)
    a = Agent(api.client, opts, api.factory)  # the fake stands in for Client
    try:
        yield api, a
    finally:
        await asyncio.gather(*(w.kill_now() for w in list(a.workers.values())), return_exceptions=True)
        a.slot.release()


async def test_the_final_delete_is_retried_after_429(agent) -> None:
    api, a = agent
    bound_pod(api, "web")
    await until(lambda: a.workers, what="a worker")
    api.delete_errors = [too_many(), ServiceUnavailable(503, "ServiceUnavailable", "busy"), ConnectionResetError()]
    mark_deleting(api, "web")
    await until(lambda: gone(api, "web"), what="the pod object deleted")
    assert api.delete_calls == 4


async def test_a_deleting_pod_whose_event_was_missed_is_terminated(agent) -> None:
    api, a = agent
    bound_pod(api, "web")
    await until(lambda: a.workers, what="a worker")
    mark_deleting(api, "web", silently=True)
    await asyncio.sleep(0)
    assert not gone(api, "web")
    a.housekeeping()
    await until(lambda: gone(api, "web"), what="the pod object deleted")


async def test_a_deleting_pod_the_agent_never_started_is_terminated(agent) -> None:
    api, a = agent
    # The pod reached the cache while the agent missed its events (a failed handler, a restart).
    p = bound_pod(api, "web")
    w = a.workers.pop(meta.uid(p))
    await w.kill_now()
    mark_deleting(api, "web", silently=True)
    a.housekeeping()
    await until(lambda: gone(api, "web"), what="the pod object deleted")


async def test_a_delete_that_failed_for_good_is_tried_again(agent) -> None:
    api, a = agent
    bound_pod(api, "web")
    await until(lambda: a.workers, what="a worker")
    api.delete_errors = [Forbidden(403, "Forbidden", "not now")]
    mark_deleting(api, "web")
    await until(lambda: api.delete_calls == 1 and not a.workers, what="the first DELETE refused")
    assert not gone(api, "web")
    a.housekeeping()
    await until(lambda: gone(api, "web"), what="the pod object deleted")


async def test_a_pod_stuck_terminating_past_its_grace_period_is_stopped(agent, monkeypatch) -> None:
    api, a = agent
    bound_pod(api, "web", grace=5)
    await until(lambda: a.workers, what="a worker")
    w = next(iter(a.workers.values()))
    await until(lambda: w.handles, what="the container running")

    async def hang(pod: Obj, timeout: float) -> None:
        await asyncio.Event().wait()  # a drain wait that never returns
    monkeypatch.setattr(a, "wait_drained", hang)
    mark_deleting(api, "web")
    await until(lambda: w.terminating.is_set(), what="termination started")
    a.housekeeping()
    assert not gone(api, "web")  # within its grace period: left alone
    mark_deleting(api, "web", ago=120, silently=True)
    a.housekeeping()
    await until(lambda: gone(api, "web"), what="the pod object deleted")
    assert w.done.is_set()


async def test_a_bound_pod_without_a_worker_is_started(agent) -> None:
    api, a = agent
    p = bound_pod(api, "web")
    w = a.workers.pop(meta.uid(p))
    await w.kill_now()
    assert not a.workers
    a.housekeeping()
    assert meta.uid(p) in a.workers
    assert a.workers[meta.uid(p)].pod["spec"]["containers"][0]["image"] == BOOTCAMP


async def test_a_lease_renewal_refused_with_503_is_retried_at_once(agent) -> None:
    api, a = agent
    api.objects.setdefault("nodes", {})[f"/{NODE}"] = {"metadata": {"name": NODE, "uid": "node-uid"}}
    api.create_errors = [ServiceUnavailable(503, "ServiceUnavailable", "busy"), too_many()]
    stop = asyncio.Event()
    loop = asyncio.create_task(a._lease_loop(stop))
    try:
        # Within the first renewal, not 10 s later at the next one.
        await until(lambda: api.items("leases"), what="the Lease created", timeout=5)
        assert api.create_errors == []
    finally:
        stop.set()
        await loop


async def test_housekeeping_backs_off_restarting_a_pod_whose_worker_keeps_failing(agent) -> None:
    api, a = agent
    p = bound_pod(api, "web")
    uid = meta.uid(p)
    started = 0
    for _ in range(3):
        w = a.workers.pop(uid, None)
        if w is not None:
            started += 1
            await w.kill_now()  # the worker ended without the pod being deleted
        a.housekeeping()
    assert started == 2  # restarted once at once, then not again within the back-off
    assert uid not in a.workers
