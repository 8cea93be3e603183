"""The scheduler's active queue: pods leave it highest priority first, FIFO among equals,
as upstream's activeQ orders them by spec.priority (PrioritySort) then by when they came."""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from kubelite.client.workqueue import WorkQueue


class PriorityWorkQueue(WorkQueue):
    """A WorkQueue whose ``get`` hands out the queued key with the highest priority."""

    def __init__(self, name: str, priority: Callable[[str], int], *, base_delay: float = 0.005,
                 max_delay: float = 1000.0):
        super().__init__(name, base_delay=base_delay, max_delay=max_delay)
        self._priority = priority
        # A heap of (-priority, arrival, key). The priority is read when the key is queued:
        # a pod's spec.priority cannot change, and a scan of every queued key per get made
        # draining n pending pods cost n² priority reads.
        self._heap: list[tuple[int, int, str]] = []
        self._arrival = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def _push(self, key: str) -> None:
        heapq.heappush(self._heap, (-self._priority(key), next(self._arrival), key))
        self._notify()

    def add(self, key: str) -> None:
        """Queue a key now (no-op if already queued)."""
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._push(key)

    def done(self, key: str) -> None:
        """Mark a key processed; re-queue it if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._push(key)

    def _pending(self) -> bool:
        """Whether a key waits in the heap."""
        return bool(self._heap)

    def _take(self) -> str:
        """The first queued key of the highest priority."""
        return heapq.heappop(self._heap)[2]
