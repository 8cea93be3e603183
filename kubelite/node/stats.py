"""The node's resource summary (the kubelet's ``/stats/summary``, the fields metrics use).

CPU is reported as a cumulative counter (``usageCoreNanoSeconds``) with the time it was
read; whoever scrapes turns two samples into a rate, as metrics-server does. Memory is the
working set. The node's own numbers are the machine's (``/proc``), except on the fake
runtime, where a node is a simulation and reports the sum of its pods.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from kubelite.node.host import RunningPod
from kubelite.node.runtime.base import Runtime
from kubelite.node.runtime.usage import Usage, UsageReader, host_usage

Obj = dict[str, Any]


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _cells(u: Usage, when: str) -> Obj:
    return {"cpu": {"time": when, "usageCoreNanoSeconds": u.cpu_ns},
            "memory": {"time": when, "workingSetBytes": u.memory_bytes}}


def summary(node_name: str, runtime: Runtime, pods: Iterable[RunningPod]) -> Obj:
    """The summary document of one node now."""
    now = dt.datetime.now(dt.UTC)
    when = _stamp(now)
    reader = runtime if isinstance(runtime, UsageReader) else None
    out_pods: list[Obj] = []
    total_cpu = total_mem = 0
    for w in pods:
        md = w.pod.get("metadata") or {}
        containers: list[Obj] = []
        pod_cpu = pod_mem = 0
        for name, handle in list(w.handles.items()):
            u = reader.container_usage(handle, w.pod) if reader is not None else None
            if u is None:
                continue
            pod_cpu += u.cpu_ns
            pod_mem += u.memory_bytes
            containers.append({"name": name, "startTime": _stamp(handle.started_at), **_cells(u, when)})
        if not containers:
            continue
        total_cpu += pod_cpu
        total_mem += pod_mem
        out_pods.append({"podRef": {"name": md.get("name", ""), "namespace": md.get("namespace", ""),
                                    "uid": md.get("uid", "")},
                         "containers": containers, **_cells(Usage(pod_cpu, pod_mem), when)})
    node = Usage(total_cpu, total_mem) if not runtime.serves_ports else host_usage()
    return {"node": {"nodeName": node_name, **_cells(node, when)}, "pods": out_pods}
