"""The scheduler's active queue: pods leave it highest priority first, FIFO among equals,
as upstream's activeQ orders them by spec.priority (PrioritySort) then by when they came."""
from __future__ import annotations

from collections.abc import Callable

from kubelite.client.workqueue import WorkQueue


class PriorityWorkQueue(WorkQueue):
    """A WorkQueue whose ``get`` hands out the queued key with the highest priority."""

    def __init__(self, name: str, priority: Callable[[str], int], *, base_delay: float = 0.005,
                 max_delay: float = 1000.0):
        super().__init__(name, base_delay=base_delay, max_delay=max_delay)
        self._priority = priority

    async def get(self) -> str | None:
        """Wait for a key; the first queued one of the highest priority."""
        async with self._cond:
            while not self._queue and not self._shutdown:
                await self._cond.wait()
            if self._shutdown and not self._queue:
                return None
            # A linear scan: the queue holds pending pods only, and keeping it sorted would
            # need re-sorting whenever a queued pod's priority is read anew.
            best_i, best = 0, None
            for i, key in enumerate(self._queue):
                p = self._priority(key)
                if best is None or p > best:
                    best_i, best = i, p
            key = self._queue[best_i]
            del self._queue[best_i]
            self._dirty.discard(key)
            self._processing.add(key)
            return key
