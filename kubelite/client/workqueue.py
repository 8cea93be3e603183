"""Rate-limited work queue keyed by namespace/name (client-go's workqueue, in asyncio).

Guarantees, as upstream:
- a key is queued at most once however many times it is added (dirty set);
- a key being processed is never handed to a second worker at the same time; an add
  while it is processing re-queues it once ``done`` is called (so no update is lost);
- ``add_rate_limited`` backs off per key exponentially (5 ms doubling to 1000 s, as
  client-go's default item limiter) until ``forget``.

``process_until`` is the one run loop of every controller: ``workers`` supervised
workers take keys and call ``sync`` until ``stop`` is set; a failed sync re-queues its
key with back-off (a conflict quietly: the next sync reads a fresher cache).
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from kubelite.client.errors import Conflict, StatusError
from kubelite.client.supervise import supervise

log = logging.getLogger(__name__)


class WorkQueue:
    """A de-duplicating FIFO of keys with delayed and rate-limited adds."""

    def __init__(self, name: str, *, base_delay: float = 0.005, max_delay: float = 1000.0):
        self.name = name
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._base = base_delay
        self._max = max_delay
        # Idle getters, oldest first: an add wakes one directly (no task per add, as waking
        # through a Condition would need from a plain function).
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._shutdown = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        """Queue a key now (no-op if already queued)."""
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._notify()

    def _notify(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def add_after(self, key: str, delay: float) -> None:
        """Queue a key after a delay (the earliest pending delay wins)."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        t = self._timers.get(key)
        if t is not None:
            if t.when() <= when:
                return
            t.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)
        self._timers[key] = loop.call_at(when, fire)

    def add_rate_limited(self, key: str) -> None:
        """Queue a key after its per-key exponential back-off."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.add_after(key, min(self._base * (2 ** n), self._max))

    def forget(self, key: str) -> None:
        """Reset a key's back-off after a successful sync."""
        self._failures.pop(key, None)

    def _pending(self) -> bool:
        """Whether a key waits to be handed out."""
        return bool(self._queue)

    def _take(self) -> str:
        """The next key to hand out (only called when ``_pending()``)."""
        return self._queue.popleft()

    async def get(self) -> str | None:
        """Wait for the next key; None once the queue is shut down."""
        while not self._pending() and not self._shutdown:
            w = asyncio.get_running_loop().create_future()
            self._waiters.append(w)
            try:
                await w
            except asyncio.CancelledError:
                # Woken and cancelled at once: hand the wake-up on so no key waits for nobody.
                if w.done() and not w.cancelled():
                    self._notify()
                raise
        if self._shutdown and not self._pending():
            return None
        key = self._take()
        self._dirty.discard(key)
        self._processing.add(key)
        if self._pending():
            self._notify()  # more keys than this getter: the next idle getter takes one
        return key

    def done(self, key: str) -> None:
        """Mark a key processed; re-queue it if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._notify()

    def shutdown(self) -> None:
        """Stop handing out keys; waiting getters return None."""
        self._shutdown = True
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)


async def run_workers(queue: WorkQueue, sync: Callable[[str], Awaitable[None]], workers: int = 1) -> None:
    """Run ``workers`` supervised loops that take keys and call ``sync`` until the queue shuts down."""
    async def worker() -> None:
        while True:
            key = await queue.get()
            if key is None:
                return
            try:
                await sync(key)
                queue.forget(key)
            except Conflict:
                log.debug("%s: sync %s conflicted, retrying", queue.name, key)
                queue.add_rate_limited(key)
            except StatusError as e:  # level-based: try again later
                log.warning("%s: sync %s failed: %s", queue.name, key, e)
                queue.add_rate_limited(key)
            except Exception as e:
                log.warning("%s: sync %s failed: %s", queue.name, key, e, exc_info=True)
                queue.add_rate_limited(key)
            finally:
                queue.done(key)
    # sync's failures are handled above; a fault in a worker's own loop restarts that
    # worker alone (supervised one by one), so the pool keeps its size.
    await asyncio.gather(*(supervise(f"{queue.name} worker", worker) for _ in range(workers)))


async def process_until(queue: WorkQueue, sync: Callable[[str], Awaitable[None]], stop: asyncio.Event,
                        workers: int = 1) -> None:
    """Run ``workers`` sync loops on the queue until ``stop`` is set, then shut the queue down
    and wait for the loops to end: the run loop of every controller (the tail of its ``run``)."""
    task = asyncio.create_task(run_workers(queue, sync, workers))
    try:
        await stop.wait()
    finally:
        queue.shutdown()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
