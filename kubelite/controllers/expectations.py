"""Controller expectations: what a controller is still waiting to see in its cache.

A ReplicaSet sync that creates 3 pods records "expect 3 adds"; each pod add seen by the
informer lowers it.  Until the count reaches 0 (or 5 minutes pass) the next sync must
not act again, or it would count the pods it just created as missing and create them a
second time - the informer cache lags the API.  Deletions are tracked by pod key, so an
unrelated pod going away never satisfies them (upstream's
UIDTrackingControllerExpectations).  All of it is in-memory and per process, as upstream.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 5 * 60.0


@dataclass
class _Expectation:
    add: int
    delete: int
    timestamp: float
    delete_keys: set[str] = field(default_factory=set)

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0


class Expectations:
    """Per controller-key counts of pending creates and (keyed) deletes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._by_key: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        """True when the controller may act: nothing pending, expired, or never recorded."""
        exp = self._by_key.get(key)
        if exp is None:
            return True
        return exp.fulfilled() or self._clock() - exp.timestamp > EXPECTATIONS_TIMEOUT

    def get(self, key: str) -> tuple[int, int] | None:
        """(adds, deletes) still expected, or None."""
        exp = self._by_key.get(key)
        return None if exp is None else (exp.add, exp.delete)

    def expect_creations(self, key: str, adds: int) -> None:
        """Record that ``adds`` pods are about to be created (replaces old expectations)."""
        self._by_key[key] = _Expectation(adds, 0, self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        """Record the pods about to be deleted (replaces old expectations)."""
        keys = set(pod_keys)
        self._by_key[key] = _Expectation(0, len(keys), self._clock(), keys)

    def expect(self, key: str, adds: int, pod_keys: Iterable[str]) -> None:
        """Record creates and (keyed) deletes of one sync together (replaces old expectations)."""
        keys = set(pod_keys)
        self._by_key[key] = _Expectation(adds, len(keys), self._clock(), keys)

    def creation_observed(self, key: str) -> None:
        """One expected pod appeared (or one create failed and will not appear)."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """A pod went away; counts only if it was one we deleted."""
        exp = self._by_key.get(key)
        if exp is not None and pod_key in exp.delete_keys:
            exp.delete_keys.discard(pod_key)
            exp.delete -= 1

    def delete(self, key: str) -> None:
        """Forget a controller (it was deleted)."""
        self._by_key.pop(key, None)
