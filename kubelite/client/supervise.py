"""Supervised long-lived tasks: a crash is logged with its traceback and the task restarts.

Every component is a few loops meant to live as long as the process: an informer's
list+watch, a controller's workers, leader election, the scheduler, the proxy.  Each
loop handles the failures it expects (a dropped watch, 410 Gone, a conflict) itself.
Anything else is a bug or a state nobody foresaw; unsupervised, it would end the task
quietly, and an informer whose task has ended keeps answering from a cache that no
longer changes.  ``supervise`` runs such a loop so that this cannot happen:

- an unexpected exception is logged with its traceback (``logger.exception``) and the
  loop is started again from the top (an informer re-lists) after a delay that doubles
  on each consecutive crash, from ``initial_delay`` up to ``max_delay``;
- a run that lasted at least ``max_delay`` before crashing counts as healthy: the next
  restart waits ``initial_delay`` again rather than the last, long delay;
- a normal return ends supervision (the loop decided it is done, e.g. ``stop`` was set);
- cancellation is never swallowed, whether it lands during a run or during the wait
  before a restart, so a supervised task stops exactly when its owner cancels it;
- with ``stop`` given, the wait before a restart ends as soon as ``stop`` is set, and
  nothing restarts after that (a crash during shutdown is logged, not retried).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

INITIAL_DELAY = 0.1
MAX_DELAY = 30.0


async def supervise(name: str, run: Callable[[], Awaitable[None]], *, stop: asyncio.Event | None = None,
                    initial_delay: float = INITIAL_DELAY, max_delay: float = MAX_DELAY,
                    logger: logging.Logger = log, clock: Callable[[], float] = time.monotonic) -> None:
    """Run ``run()`` until it returns, restarting it with capped exponential back-off when it raises."""
    delay = initial_delay
    while True:
        started = clock()
        try:
            await run()
            return
        except Exception:
            if stop is not None and stop.is_set():
                logger.exception("%s failed while stopping", name)
                return
            if clock() - started >= max_delay:
                delay = initial_delay  # it had been running fine: this is a fresh failure
            logger.exception("%s crashed; restarting in %.3gs", name, delay)
        if await _pause(delay, stop):
            return
        delay = min(delay * 2, max_delay)


async def _pause(seconds: float, stop: asyncio.Event | None) -> bool:
    """Sleep ``seconds``; True if ``stop`` was set first (or already)."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def spawn(name: str, run: Callable[[], Awaitable[None]], *, stop: asyncio.Event | None = None,
          initial_delay: float = INITIAL_DELAY, max_delay: float = MAX_DELAY,
          logger: logging.Logger = log) -> asyncio.Task[None]:
    """Start ``supervise(name, run, …)`` as a task named ``name``."""
    return asyncio.create_task(supervise(name, run, stop=stop, initial_delay=initial_delay, max_delay=max_delay,
                                         logger=logger), name=name)
