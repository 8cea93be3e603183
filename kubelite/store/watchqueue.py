"""The watch both stores hand out: events queued for one consumer, closed when it falls behind."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from kubelite.store.base import Event, Watch

log = logging.getLogger(__name__)

WATCH_QUEUE_LIMIT = 50_000  # a watcher further behind than this is closed (it re-watches)


class QueuedWatch(Watch):
    """Events under ``prefix`` pushed by the store; ``discard`` takes it off the store's list."""

    def __init__(self, prefix: str, discard: Callable[[QueuedWatch], None], after: int = 0):
        self.prefix = prefix
        self._discard = discard
        # Events at or below this revision are not this watcher's (etcd: a client may watch from
        # the revision of its own write before that write's event has come back).
        self.after = after
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.closed = False

    def push(self, ev: Event) -> None:
        """Queue one event; a watcher too far behind is closed instead."""
        if self.closed or ev.revision <= self.after:
            return
        if self.queue.qsize() >= WATCH_QUEUE_LIMIT:
            log.warning("watch on %s fell behind; closing it", self.prefix)
            self.close()
            return
        self.queue.put_nowait(ev)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            ev = await self.queue.get()
            if ev is None:
                return
            yield ev

    def close(self) -> None:
        """End the stream (idempotent)."""
        if not self.closed:
            self.closed = True
            self._discard(self)
            self.queue.put_nowait(None)
