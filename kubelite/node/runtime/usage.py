"""Resource usage of containers and of the node, as the kubelet's summary reports it.

Two numbers per container: CPU time used so far (a counter in nanoseconds, which the
metrics pipeline turns into a rate from two samples) and the memory working set (bytes in
use minus the page cache the kernel could drop, ``inactive_file``, as the kubelet
computes it). Where they come from depends on the runtime:

- oci: the container's own cgroup (v2 ``cpu.stat`` / ``memory.current``; v1 ``cpuacct``
  and ``memory`` hierarchies);
- process: ``/proc`` of every process in the container's session (the runtime starts
  each container in a new session; a process that leaves it is not counted);
- fake: whatever the pod's annotations say (``fake.kubelite.dev/cpu-usage`` and
  ``memory-usage``, quantities, optionally ``<container>.`` before the key), else zero.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .base import ContainerHandle

Obj = dict[str, Any]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Usage:
    """Cumulative CPU time (ns) and memory working set (bytes) of a container or node."""

    cpu_ns: int
    memory_bytes: int


@runtime_checkable
class UsageReader(Protocol):
    """A runtime that can measure its containers (all of kubelite's can)."""

    def container_usage(self, handle: ContainerHandle, pod: Obj) -> Usage | None:
        """The container's usage now, or None when it cannot be read (gone, no cgroup)."""


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _keyed(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


def cgroup_v2_usage(directory: str) -> Usage | None:
    """Usage of one unified-hierarchy cgroup."""
    cpu = _keyed(_read(os.path.join(directory, "cpu.stat")))
    current = _read(os.path.join(directory, "memory.current"))
    if "usage_usec" not in cpu and current is None:
        return None
    mem = int(current) if current and current.strip().isdigit() else 0
    inactive = _keyed(_read(os.path.join(directory, "memory.stat"))).get("inactive_file", 0)
    return Usage(cpu_ns=cpu.get("usage_usec", 0) * 1000, memory_bytes=max(0, mem - inactive))


def cgroup_v1_usage(cpuacct_dir: str | None, memory_dir: str | None) -> Usage | None:
    """Usage from the v1 ``cpuacct`` and ``memory`` directories of one cgroup."""
    cpu_text = _read(os.path.join(cpuacct_dir, "cpuacct.usage")) if cpuacct_dir else None
    mem_text = _read(os.path.join(memory_dir, "memory.usage_in_bytes")) if memory_dir else None
    if cpu_text is None and mem_text is None:
        return None
    cpu = int(cpu_text) if cpu_text and cpu_text.strip().isdigit() else 0
    mem = int(mem_text) if mem_text and mem_text.strip().isdigit() else 0
    stat = _keyed(_read(os.path.join(memory_dir, "memory.stat"))) if memory_dir else {}
    inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    return Usage(cpu_ns=cpu, memory_bytes=max(0, mem - inactive))


def _proc_stat(pid: str) -> tuple[int, int, int] | None:
    """(session id, utime+stime ticks, rss pages) of one process."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = text[text.rfind(")") + 2:].split()
    try:
        return int(fields[3]), int(fields[11]) + int(fields[12]), int(fields[21])
    except (IndexError, ValueError):
        return None


def session_usage(sid: int) -> Usage | None:
    """Usage of every process in session ``sid`` (the process runtime's container)."""
    cpu_ticks = rss = 0
    found = False
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        st = _proc_stat(pid)
        if st is None or st[0] != sid:
            continue
        found = True
        cpu_ticks += st[1]
        rss += st[2]
    if not found:
        return None
    return Usage(cpu_ns=cpu_ticks * 1_000_000_000 // _TICKS, memory_bytes=rss * _PAGE)


def host_usage() -> Usage:
    """The machine's usage: non-idle CPU time of all CPUs, and memory in use less reclaimable cache."""
    cpu_ns = 0
    first = (_read("/proc/stat") or "").split("\n", 1)[0].split()
    if first and first[0] == "cpu":
        vals = [int(x) for x in first[1:] if x.isdigit()]
        # user nice system idle iowait irq softirq steal (guest time is already in user).
        busy = sum(vals[:8]) - sum(vals[3:5]) if len(vals) >= 8 else 0
        cpu_ns = busy * 1_000_000_000 // _TICKS
    info: dict[str, int] = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        k, _, v = line.partition(":")
        parts = v.split()
        if parts and parts[0].isdigit():
            info[k] = int(parts[0]) * 1024
    used = info.get("MemTotal", 0) - info.get("MemFree", 0) - info.get("Buffers", 0) - info.get("Cached", 0)
    # The working set also counts the active part of the page cache, as the root cgroup's does.
    working = used + info.get("Active(file)", 0)
    return Usage(cpu_ns=cpu_ns, memory_bytes=max(0, working))
