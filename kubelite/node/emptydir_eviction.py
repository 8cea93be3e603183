"""A disk emptyDir's `sizeLimit`, enforced as the kubelet's eviction manager does it.

Every CHECK_EVERY seconds the agent measures each disk-backed emptyDir that has a
sizeLimit (a `medium: Memory` one is a tmpfs of that size already, so it cannot outgrow
it). A pod with a volume over its limit is evicted as the kubelet evicts for local
storage: phase Failed, reason `Evicted`, the kubelet's message, a Warning `Evicted`
event, the DisruptionTarget condition (reason `TerminationByKubelet`), and its containers
killed without a grace period.

Measuring is a walk of the volume's directory summing allocated blocks (what `du`
counts), each inode once, in a worker thread. It stops as soon as the sum passes the
limit, so a volume far over its limit costs no more than one at its limit.
"""
from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from kubelite.api import meta, quantity

log = logging.getLogger("kubelite.node")
Obj = dict[str, Any]

CHECK_EVERY = 10.0
REASON = "Evicted"
DISRUPTION_REASON = "TerminationByKubelet"


def message(volume: str, limit: str) -> str:
    """The kubelet's eviction message for an emptyDir over its sizeLimit (trailing space included)."""
    return f'Usage of EmptyDir volume "{volume}" exceeds the limit "{limit}". '


def limited_volumes(pod: Obj) -> list[tuple[str, str, int]]:
    """(name, limit as written, limit in bytes) of each disk emptyDir of `pod` with a sizeLimit."""
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or []:
        src = v.get("emptyDir")
        if not isinstance(src, dict) or src.get("medium") == "Memory" or not src.get("sizeLimit"):
            continue
        try:
            limit = quantity.value(src["sizeLimit"])
        except (ValueError, TypeError):
            continue
        out.append((str(v.get("name", "")), str(src["sizeLimit"]), int(limit)))
    return out


def usage(path: str, stop_above: int | None = None) -> int:
    """Bytes allocated under `path` (files, directories, links; hard links once); the walk
    ends early once the total passes `stop_above`."""
    total = 0
    seen: set[tuple[int, int]] = set()
    pending = [path]
    while pending:
        top = pending.pop()
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue  # removed meanwhile, or not a directory
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += st.st_blocks * 512
            if stat.S_ISDIR(st.st_mode):
                pending.append(e.path)
        if stop_above is not None and total > stop_above:
            return total
    return total


def over_limit(pod: Obj, path_of: Callable[[str], str | None]) -> str | None:
    """The eviction message when an emptyDir of `pod` (found by `path_of(volume name)`) is
    over its sizeLimit, else None."""
    for name, text, limit in limited_volumes(pod):
        path = path_of(name)
        if path is not None and usage(path, stop_above=limit) > limit:
            return message(name, text)
    return None


def disruption_condition(msg: str) -> Obj:
    """The DisruptionTarget condition the kubelet sets on a pod it evicts."""
    return {"type": "DisruptionTarget", "status": "True", "reason": DISRUPTION_REASON, "message": msg,
            "lastTransitionTime": meta.rfc3339()}


class Recorder(Protocol):
    """Where events go (the agent's EventRecorder)."""

    def event(self, obj: Obj, type_: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Record an event about `obj`."""


class Evictable(Protocol):
    """A pod worker as eviction sees it."""

    pod: Obj

    def finished(self) -> bool:
        """The pod is done on this node."""

    def volume_path(self, name: str) -> str | None:
        """Where volume `name` is on the node (None before it is set up)."""

    async def fail(self, reason: str, message: str, *, grace: float | None = None,
                   condition: Obj | None = None) -> None:
        """Fail the pod for good."""


async def evict(worker: Evictable, recorder: Recorder, msg: str) -> None:
    """Evict the pod as the kubelet does for local storage (no grace period)."""
    log.info("evicting pod %s/%s: %s", meta.namespace(worker.pod), meta.name(worker.pod), msg.strip())
    recorder.event(worker.pod, "Warning", REASON, msg)
    await worker.fail(REASON, msg, grace=0, condition=disruption_condition(msg))


async def check(workers: Iterable[Evictable], recorder: Recorder) -> int:
    """Measure every limited emptyDir of the running pods once and evict those over; how many."""
    evicted = 0
    for w in list(workers):
        if w.finished() or meta.is_deleting(w.pod) or not limited_volumes(w.pod):
            continue
        msg = await asyncio.to_thread(over_limit, w.pod, w.volume_path)
        if msg is not None and not w.finished():
            await evict(w, recorder, msg)
            evicted += 1
    return evicted


async def run(workers: Callable[[], Iterable[Evictable]], recorder: Recorder, stop: asyncio.Event,
              every: float = CHECK_EVERY) -> None:
    """Check every `every` seconds until `stop`."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            try:
                await check(workers(), recorder)
            except Exception:  # a bug here must not end the agent
                log.exception("emptyDir size check")
