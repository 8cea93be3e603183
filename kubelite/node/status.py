"""Pod status as the kubelet computes it (pure functions).

Phase follows upstream's getPhase: a waiting container that never ran keeps the pod
Pending; a crashing container under restartPolicy Always leaves it Running (its
STATUS column shows CrashLoopBackOff); terminal phases only under Never/OnFailure.
Conditions come in the kubelet's order: PodReadyToStartContainers, Initialized,
Ready, ContainersReady, PodScheduled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass
class ContainerStatus:
    """What the agent knows about one container of a pod."""

    name: str
    image: str
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    image_id: str = ""
    container_id: str = ""
    init: bool = False

    def to_api(self) -> Obj:
        """containerStatuses[] entry."""
        out: Obj = {"name": self.name, "state": self.state, "lastState": self.last_state, "ready": self.ready,
                    "restartCount": self.restart_count, "image": self.image, "imageID": self.image_id}
        if self.container_id:
            out["containerID"] = self.container_id
        out["started"] = self.started
        return out

    @property
    def running(self) -> bool:
        """Whether the container's current state is running."""
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        """The terminated state, if the container has ended."""
        return self.state.get("terminated")


def pod_phase(restart_policy: str, init: list[ContainerStatus], main: list[ContainerStatus]) -> str:
    """Upstream getPhase for regular and init containers."""
    for c in init:
        t = c.terminated
        if not (t and t.get("exitCode") == 0):
            if t and restart_policy == "Never":
                return "Failed"
            return "Pending"
    running = waiting = stopped = succeeded = failed = 0
    for c in main:
        if c.running:
            running += 1
        elif c.terminated is not None:
            stopped += 1
            if c.terminated.get("exitCode") == 0:
                succeeded += 1
            else:
                failed += 1
        elif c.last_state.get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if restart_policy == "OnFailure":
            return "Succeeded" if stopped == succeeded else "Running"
        return "Failed" if failed else "Succeeded"
    return "Pending"


def _cond(type_: str, ok: bool, now: str, prev: dict[str, Obj], reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    old = prev.get(type_)
    ltt = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
    c: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": ltt}
    if not ok and reason:
        c["reason"] = reason
        c["message"] = message
    return c


def conditions(pod: Obj, init: list[ContainerStatus], main: list[ContainerStatus], sandbox_ready: bool,
               now: str, phase: str) -> list[Obj]:
    """The five pod conditions, keeping lastTransitionTime when a status is unchanged."""
    prev = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}
    init_done = all(c.terminated and c.terminated.get("exitCode") == 0 for c in init)
    pending_init = [c.name for c in init if not (c.terminated and c.terminated.get("exitCode") == 0)]
    unready = [c.name for c in main if not c.ready]
    # Containers that completed successfully in a Succeeded pod do not make it unready upstream,
    # but the pod is not Ready either: report PodCompleted.
    out = [_cond("PodReadyToStartContainers", sandbox_ready, now, prev)]
    out.append(_cond("Initialized", init_done, now, prev, "ContainersNotInitialized",
                     f"containers with incomplete status: [{' '.join(pending_init)}]"))
    if phase == "Succeeded":
        out.append(_cond("Ready", False, now, prev, "PodCompleted", ""))
        out.append(_cond("ContainersReady", False, now, prev, "PodCompleted", ""))
    else:
        msg = f"containers with unready status: [{' '.join(unready)}]"
        out.append(_cond("Ready", not unready, now, prev, "ContainersNotReady", msg))
        out.append(_cond("ContainersReady", not unready, now, prev, "ContainersNotReady", msg))
    sched = prev.get("PodScheduled") or {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                         "lastTransitionTime": now}
    out.append(sched)
    for c in out:
        if c.get("reason") == "PodCompleted":
            c.pop("message", None)
    # Conditions the kubelet does not own (DisruptionTarget, readiness gates' types…) are
    # kept as the API has them, as upstream's status manager does.
    owned = {c["type"] for c in out}
    out += [c for t, c in prev.items() if t not in owned]
    return out


def build_status(pod: Obj, *, init: list[ContainerStatus], main: list[ContainerStatus], host_ip: str,
                 pod_ip: str, start_time: str, sandbox_ready: bool, now: str) -> Obj:
    """The whole pod status the agent reports."""
    restart_policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    phase = pod_phase(restart_policy, init, main)
    st: Obj = {
        "phase": phase,
        "conditions": conditions(pod, init, main, sandbox_ready, now, phase),
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": [c.to_api() for c in main],
        "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
    }
    if pod_ip:
        st["podIP"] = pod_ip
        st["podIPs"] = [{"ip": pod_ip}]
    if init:
        st["initContainerStatuses"] = [c.to_api() for c in init]
    return st
