"""Retrying API requests that failed for a passing reason, as client-go does inside its
REST client.

A busy API server answers 429 (with Retry-After) when its in-flight caps are reached,
5xx when it fails, and drops connections when it restarts or sheds load.  None of these
says the request was wrong, so the caller tries again: exponential back-off with jitter,
never sooner than Retry-After.  Any other error (NotFound, Conflict, Invalid, Forbidden
…) is the caller's to handle and is raised at once.  The node agent retries its writes
without end (one 429 on the last DELETE of a pod once left it Terminating for good);
controllers retry a bounded number of times so a 429 is not a failed sync that grows the
key's back-off in their work queue.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from kubelite.client.errors import ServerError, StatusError, TooManyRequests

log = logging.getLogger("kubelite.client.retry")
T = TypeVar("T")

BASE_DELAY = 0.2
MAX_DELAY = 10.0

Sleep = Callable[[float], Awaitable[None]]


def retry_after(err: StatusError) -> float:
    """The server's Retry-After hint (details.retryAfterSeconds), 0 when absent."""
    try:
        return float((err.details or {}).get("retryAfterSeconds") or 0)
    except (TypeError, ValueError):
        return 0.0


def is_retriable(err: BaseException) -> bool:
    """Worth another try: 429, 5xx, or the connection failed (the request may not have arrived)."""
    if isinstance(err, TooManyRequests | ServerError):
        return True
    if isinstance(err, StatusError):
        return False
    return isinstance(err, aiohttp.ClientError | OSError | TimeoutError)


def backoff(err: BaseException, attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: doubling from BASE_DELAY to MAX_DELAY, jittered, ≥ Retry-After."""
    delay = min(MAX_DELAY, BASE_DELAY * 2 ** attempt) * random.uniform(0.5, 1.0)
    if isinstance(err, StatusError):
        delay = max(delay, retry_after(err))
    return delay


async def with_retries(what: str, call: Callable[[], Awaitable[T]], *, attempts: int | None = None,
                       sleep: Sleep = asyncio.sleep) -> T:
    """Run ``call`` until it succeeds or fails for good; ``attempts`` None retries without end."""
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as e:
            if not is_retriable(e) or (attempts is not None and attempt + 1 >= attempts):
                raise
            delay = backoff(e, attempt)
            # The first retries are routine under load; say so only when it keeps failing.
            level = logging.WARNING if attempt >= 3 else logging.DEBUG
            log.log(level, "%s failed (%s), retrying in %.1f s", what, _describe(e), delay)
            attempt += 1
            await sleep(delay)


def _describe(e: BaseException) -> str:
    if isinstance(e, StatusError):
        return f"{e.code} {e.reason}: {e.message.strip()}"
    return f"{type(e).__name__}: {e}"
