"""The controllers' work queue: de-duplication, one worker per key, wake-ups and shutdown
(the guarantees client-go's workqueue gives, which every controller's sync relies on)."""
from __future__ import annotations

import asyncio

from kubelite.client.workqueue import WorkQueue, run_workers
from kubelite.scheduler.priorityqueue import PriorityWorkQueue


async def _until(cond, timeout: float = 5.0) -> None:
    """Poll cond() until true, failing after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_a_burst_of_adds_for_one_key_is_one_sync_after_the_burst():
    q = WorkQueue("t")
    for _ in range(100):
        q.add("ns/a")
    q.add("ns/b")
    assert len(q) == 2
    assert await q.get() == "ns/a"
    assert await q.get() == "ns/b"
    assert len(q) == 0


async def test_an_add_while_processing_requeues_the_key_once_done():
    q = WorkQueue("t")
    q.add("k")
    key = await q.get()
    q.add("k")
    q.add("k")
    assert len(q) == 0  # not handed to a second worker while the first holds it
    q.done(key)
    assert len(q) == 1
    assert await asyncio.wait_for(q.get(), 5) == "k"


async def test_every_idle_worker_is_woken_for_its_own_key():
    q = WorkQueue("t")
    seen: list[str] = []
    release = asyncio.Event()

    async def sync(key: str) -> None:
        seen.append(key)
        await release.wait()
    task = asyncio.create_task(run_workers(q, sync, workers=3))
    await asyncio.sleep(0)  # the workers wait on an empty queue
    for k in ("a", "b", "c"):
        q.add(k)
    await _until(lambda: len(seen) == 3)
    assert sorted(seen) == ["a", "b", "c"]  # three keys in progress at once, one per worker
    release.set()
    q.shutdown()
    await asyncio.wait_for(task, 5)


async def test_shutdown_wakes_waiting_getters_with_none():
    q = WorkQueue("t")
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    assert await asyncio.wait_for(asyncio.gather(*getters), 5) == [None, None, None]


async def test_a_getter_cancelled_after_its_wake_up_passes_it_on():
    q = WorkQueue("t")
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")       # wakes the first getter …
    first.cancel()   # … which is cancelled before it runs
    assert await asyncio.wait_for(second, 5) == "k"


async def test_the_priority_queue_hands_out_the_highest_priority_first_to_a_waiting_getter():
    prio = {"low": 0, "high": 10}
    q = PriorityWorkQueue("t", prio.__getitem__)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("high")
    assert await asyncio.wait_for(getter, 5) == "high"
    q.add("low")
    q.add("high")  # still processing: held back
    q.done("high")
    assert await q.get() == "high"
    assert await q.get() == "low"
