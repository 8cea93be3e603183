"""Lease-based leader election against the in-memory fake API."""
from __future__ import annotations

import asyncio

from kubelite.client.leaderelection import LeaderElector
from tests.fakeapi import FakeAPI


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_one_leader_at_a_time_and_takeover_after_expiry():
    api, clock = FakeAPI(), Clock()
    a = LeaderElector(api, name="kcm", identity="a", clock=clock)
    b = LeaderElector(api, name="kcm", identity="b", clock=clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    lease = api.get_obj("leases", "kube-system", "kcm")
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 15
    assert await a.try_acquire_or_renew()  # renew keeps acquireTime and transitions
    renewed = api.get_obj("leases", "kube-system", "kcm")["spec"]
    assert renewed["acquireTime"] == lease["spec"]["acquireTime"] and renewed["leaseTransitions"] == 0
    # b saw the last renewal now; 15 s of silence later the lease is b's.
    assert not await b.try_acquire_or_renew()
    clock.t += 14
    assert not await b.try_acquire_or_renew()
    clock.t += 2
    assert await b.try_acquire_or_renew()
    spec = api.get_obj("leases", "kube-system", "kcm")["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1


async def test_release_lets_the_next_candidate_in_at_once():
    api, clock = FakeAPI(), Clock()
    a = LeaderElector(api, name="kcm", identity="a", clock=clock)
    b = LeaderElector(api, name="kcm", identity="b", clock=clock)
    assert await a.try_acquire_or_renew()
    await a.release()
    assert api.get_obj("leases", "kube-system", "kcm")["spec"]["holderIdentity"] == ""
    assert await b.try_acquire_or_renew()


async def test_run_calls_lead_and_stops_it_on_stop():
    api = FakeAPI()
    stop = asyncio.Event()
    e = LeaderElector(api, name="kcm", identity="a", retry_period=0.01)
    led = asyncio.Event()
    ended = asyncio.Event()

    async def lead(lost: asyncio.Event) -> None:
        led.set()
        await lost.wait()
        ended.set()
    runner = asyncio.create_task(e.run(lead, stop))
    await led.wait()
    stop.set()
    await runner
    assert ended.is_set()
    assert api.get_obj("leases", "kube-system", "kcm")["spec"]["holderIdentity"] == ""
