"""spec.activeDeadlineSeconds, as the kubelet's active deadline handler.

A pod that has been active on the node (since status.startTime) for its
activeDeadlineSeconds is failed with reason DeadlineExceeded and its containers are
stopped. The field may be set or lowered on a running pod, so the timer is re-armed on
every pod update; between updates it costs one timer handle per pod, no polling.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubelite.api import meta

REASON = "DeadlineExceeded"
MESSAGE = "Pod was active on the node longer than the specified deadline"

Obj = dict[str, Any]


def seconds_left(pod: Obj, start_time: str, now: datetime) -> float | None:
    """Seconds until the pod outlives its deadline (≤ 0: already has); None without a deadline."""
    limit = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    start = meta.parse_time(start_time)
    if limit is None or start is None:
        return None
    return float(limit) - (now - start).total_seconds()


class ActiveDeadline:
    """One pod's deadline timer: calls ``on_exceeded`` once, when the deadline passes."""

    def __init__(self, on_exceeded: Callable[[], None]):
        self._on_exceeded = on_exceeded
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: tuple[Any, str] | None = None
        self.fired = False

    def arm(self, pod: Obj, start_time: str) -> None:
        """(Re)start the timer from the pod's current activeDeadlineSeconds."""
        if self.fired:
            return
        key = ((pod.get("spec") or {}).get("activeDeadlineSeconds"), start_time)
        if key == self._armed_for:
            return  # most updates do not touch the deadline
        self.cancel()
        self._armed_for = key
        left = seconds_left(pod, start_time, meta.now())
        if left is not None:
            self._handle = asyncio.get_running_loop().call_later(max(left, 0.0), self._fire)

    def _fire(self) -> None:
        self._handle = None
        if not self.fired:
            self.fired = True
            self._on_exceeded()

    def cancel(self) -> None:
        """Stop the timer (pod finished or gone)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_for = None
