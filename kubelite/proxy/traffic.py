"""Which pods this proxy still has traffic in flight with (an input to the drain handshake).

A pod that stops receiving new connections may still be answering ones the proxy already
forwarded; signalling it then cuts those replies off.  The listeners therefore report,
per pod uid, what they still have open:

- TCP: a hold from the moment a connect to the pod starts until the forwarded connection
  is closed (both directions done, or aborted), so a connect that was already under way
  when the pod stopped being routed counts as well;
- UDP: a flow has no end the proxy can see, so a pod counts as busy for ``UDP_QUIET``
  seconds after the last datagram a flow carried to or from it — long enough for the
  reply to a request sent just before the pod stopped being routed.  (A client's next
  datagram already moves to another pod, see ``udp.py``.)

Nothing here decides when a pod is drained; ``Proxy.drained`` combines this with its
routing state and a time bound.
"""
from __future__ import annotations

import time
from collections.abc import Callable

UDP_QUIET = 1.0  # seconds a datagram keeps its pod busy (a request/response round trip, generously)


class PodTraffic:
    """Per-pod counts of open forwarded TCP connections and the last UDP datagram's time."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 on_idle: Callable[[str], None] | None = None):
        self._clock = clock
        self.on_idle = on_idle  # called when a pod's last TCP hold is released
        self._open: dict[str, int] = {}
        self._datagram: dict[str, float] = {}

    def hold(self, uid: str) -> None:
        """A connect to the pod starts (the hold lasts until ``release``)."""
        if uid:
            self._open[uid] = self._open.get(uid, 0) + 1

    def release(self, uid: str) -> None:
        """The connect failed or the forwarded connection is closed."""
        n = self._open.get(uid, 0) - 1
        if n > 0:
            self._open[uid] = n
            return
        if self._open.pop(uid, None) is not None and self.on_idle is not None:
            self.on_idle(uid)

    def datagram(self, uid: str) -> None:
        """A UDP flow carried a datagram to or from the pod."""
        if uid:
            self._datagram[uid] = self._clock()

    def connections(self, uid: str) -> int:
        """Open (or opening) TCP connections to the pod."""
        return self._open.get(uid, 0)

    def busy_until(self, uid: str) -> float | None:
        """None while a TCP connection holds the pod; else when its UDP activity stops counting (<= now: idle)."""
        if uid in self._open:
            return None
        last = self._datagram.get(uid)
        return 0.0 if last is None else last + UDP_QUIET

    def busy(self, uid: str) -> bool:
        """The pod still has forwarded traffic that may be waiting for it."""
        until = self.busy_until(uid)
        return until is None or until > self._clock()

    def prune(self) -> None:
        """Forget UDP activity that no longer counts (keeps the map small)."""
        now = self._clock()
        for uid in [u for u, t in self._datagram.items() if t + UDP_QUIET <= now]:
            del self._datagram[uid]
