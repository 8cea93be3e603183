"""What a rollout looks like right now, and which step the Deployment controller is at.

Everything here is pure: a Deployment, its ReplicaSets and pods (plain dicts, as an
informer cache holds them) in, small records and one English sentence out.  The watch
view (``kubelite.ui.rollout``) draws these; tests feed them tables.

The sentence is read off the objects the way the controller itself decides (level-based:
it never knows which event happened, only what is), walking the same ladder as upstream's
sync: deleted → not observed yet → paused → failed/stuck → complete → strategy step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.controllers.deployment import autorollback, util

Obj = dict[str, Any]

# Pod states, as a learner sees them (close to kubectl's STATUS column).
PENDING = "Pending"
CREATING = "ContainerCreating"
RUNNING = "Running"            # running, not ready yet
READY = "Ready"
TERMINATING = "Terminating"
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
CRASH_LOOP = "CrashLoopBackOff"
COMPLETED = "Completed"
FAILED = "Failed"

IMAGE_FAILURES = frozenset({ERR_IMAGE_PULL, IMAGE_PULL_BACKOFF, "InvalidImageName", "ErrImageNeverPull"})
CRASH_FAILURES = frozenset({CRASH_LOOP, "RunContainerError", "CreateContainerError"})


def pod_state(pod: Obj) -> str:
    """One word for a pod: Pending, ContainerCreating, Running (not ready), Ready, Terminating,
    ErrImagePull, ImagePullBackOff, CrashLoopBackOff, Completed, Failed (or another waiting reason)."""
    if meta.is_deleting(pod):
        return TERMINATING
    status = pod.get("status") or {}
    phase = status.get("phase") or PENDING
    if phase == "Succeeded":
        return COMPLETED
    if phase == "Failed":
        return FAILED
    statuses = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
    # A failure reason wins over "creating": the learner needs to see why a pod is stuck.
    for cs in statuses:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason") or ""
        if reason in IMAGE_FAILURES or reason in CRASH_FAILURES:
            return reason
    if phase == PENDING:
        if not (pod.get("spec") or {}).get("nodeName"):
            return PENDING
        return CREATING
    for cs in statuses:
        if (cs.get("state") or {}).get("waiting"):
            return (cs["state"]["waiting"].get("reason") or CREATING)
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            return READY if c.get("status") == "True" else RUNNING
    return RUNNING


def pod_restarts(pod: Obj) -> int:
    """Restarts summed over the pod's containers."""
    return sum(int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])


def template_image(obj: Obj | None) -> str:
    """The images of a pod template (Deployment or ReplicaSet), comma-separated."""
    spec = (((obj or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    return ",".join(c.get("image", "") for c in spec.get("containers") or [])


@dataclass
class ReplicaSetView:
    """One ReplicaSet of the rollout with its pods."""

    rs: Obj
    new: bool
    pods: list[Obj] = field(default_factory=list)

    @property
    def name(self) -> str:
        return meta.name(self.rs)

    @property
    def revision(self) -> int:
        return util.revision(self.rs)

    @property
    def image(self) -> str:
        return template_image(self.rs)

    @property
    def desired(self) -> int:
        return util.replicas(self.rs)

    @property
    def current(self) -> int:
        return util.status_int(self.rs, "replicas")

    @property
    def ready(self) -> int:
        return util.status_int(self.rs, "readyReplicas")

    @property
    def available(self) -> int:
        return util.status_int(self.rs, "availableReplicas")


@dataclass
class RolloutState:
    """A Deployment with its ReplicaSets (newest revision first) and pods."""

    deployment: Obj | None
    replicasets: list[ReplicaSetView] = field(default_factory=list)

    @property
    def new(self) -> ReplicaSetView | None:
        return next((v for v in self.replicasets if v.new), None)

    @property
    def old(self) -> list[ReplicaSetView]:
        return [v for v in self.replicasets if not v.new]


def build_state(deployment: Obj | None, replicasets: list[Obj], pods: list[Obj]) -> RolloutState:
    """Pick the Deployment's ReplicaSets (by controller reference) and their pods."""
    if deployment is None:
        return RolloutState(None)
    uid = meta.uid(deployment)
    owned = [rs for rs in replicasets if (meta.controller_ref(rs) or {}).get("uid") == uid]
    new_rs = util.find_new_rs(deployment, owned)
    views = {meta.uid(rs): ReplicaSetView(rs, new_rs is not None and meta.uid(rs) == meta.uid(new_rs))
             for rs in owned}
    for pod in pods:
        v = views.get((meta.controller_ref(pod) or {}).get("uid", ""))
        if v is not None:
            v.pods.append(pod)
    for v in views.values():
        v.pods.sort(key=lambda p: (meta.meta(p).get("creationTimestamp") or "", meta.name(p)))
    ordered = sorted(views.values(), key=lambda v: (not v.new, -v.revision, v.name))
    return RolloutState(deployment, ordered)


# --- explaining the step ---------------------------------------------------------------

def _first_state(pods: list[Obj], wanted: frozenset[str]) -> str:
    for p in pods:
        s = pod_state(p)
        if s in wanted:
            return s
    return ""


def _serving(n: int) -> str:
    if n <= 0:
        return "no old pods are serving"
    return f"old pods keep serving ({n} available)"


def explain_step(deployment: Obj | None, replicasets: list[Obj], pods: list[Obj]) -> str:
    """One plain-English line: the step the Deployment controller is at."""
    return explain(build_state(deployment, replicasets, pods))


def explain(state: RolloutState) -> str:
    """explain_step for an already built RolloutState."""
    d = state.deployment
    if d is None:
        return "waiting: the deployment does not exist (yet)"
    if meta.is_deleting(d):
        return "deleting: the deployment, its ReplicaSets and pods are being removed"
    spec, status = d.get("spec") or {}, d.get("status") or {}
    gen, observed = int(meta.meta(d).get("generation") or 0), int(status.get("observedGeneration") or 0)
    if observed < gen:
        return f"waiting for the controller to see the new spec (generation {gen}, observed {observed})"
    want = util.replicas(d)
    new, old = state.new, state.old
    if spec.get("paused"):
        return "paused: template changes are not rolled out until `kubectl rollout resume`"
    progressing = util.get_condition(status, "Progressing") or {}
    failed = progressing.get("reason") == util.TIMED_OUT
    prefix = "failed (progress deadline exceeded): " if failed else "stuck: "
    old_available = sum(v.available for v in old)
    if new is not None:
        bad = _first_state(new.pods, IMAGE_FAILURES)
        if bad:
            return f"{prefix}new pods cannot pull their image {new.image} ({bad}); {_serving(old_available)}"
        bad = _first_state(new.pods, CRASH_FAILURES)
        if bad:
            return f"{prefix}new pods keep crashing ({bad}); {_serving(old_available)}"
    if failed:
        return f"failed: {progressing.get('message') or 'the rollout made no progress in time'}"
    old_current = sum(v.current for v in old)
    terminating = sum(1 for v in state.replicasets for p in v.pods if meta.is_deleting(p))
    if new is not None and new.desired == want and new.available >= want and old_current == 0 \
            and int(status.get("updatedReplicas") or 0) == want:
        if want == 0:
            return "scaled to zero: no pods wanted"
        done = f"rolled out: {want}/{want} pods of revision {new.revision} available"
        src = meta.annotations_of(d).get(autorollback.ROLLED_BACK_FROM)
        if src:
            done += f" (rolled back automatically from {src})"
        return done + (f"; {terminating} old pod(s) still terminating" if terminating else "")
    if util.strategy_type(d) == "Recreate":
        return _explain_recreate(want, new, old)
    return _explain_rolling(d, want, new, old)


def _explain_recreate(want: int, new: ReplicaSetView | None, old: list[ReplicaSetView]) -> str:
    old_wanted = sum(v.desired for v in old)
    # Upstream waits until no old pod runs at all, terminating ones included.
    live = sum(1 for v in old for p in v.pods if pod_state(p) not in (COMPLETED, FAILED))
    old_running = max(live, sum(v.current for v in old))
    if old_wanted:
        return "Recreate: scaling old ReplicaSets down to 0 before starting new pods"
    if old_running:
        return f"Recreate: waiting for {old_running} old pod(s) to stop before starting new ones"
    if new is None:
        return "Recreate: creating the new ReplicaSet"
    if new.desired < want:
        return f"Recreate: scaling up new RS to {want}"
    if new.current < new.desired:
        return f"Recreate: creating new pods ({new.current}/{new.desired})"
    return f"Recreate: waiting for new pods to become available ({new.available}/{want})"


def _explain_rolling(d: Obj, want: int, new: ReplicaSetView | None, old: list[ReplicaSetView]) -> str:
    surge, unavailable = util.max_surge(d), util.max_unavailable(d)
    ceiling, floor = want + surge, want - unavailable
    allows = f"maxSurge {surge} allows {ceiling} pods"
    keeps = f"maxUnavailable {unavailable}: at least {floor} of {want} must stay available"
    if new is None:
        return "creating a new ReplicaSet for the changed pod template"
    # Pods being created or removed right now: the controller's last write is in flight.
    if new.current < new.desired:
        return f"scaling up new RS to {new.desired} ({allows})"
    shrinking = [v for v in old if v.current > v.desired]
    if shrinking:
        v = shrinking[0]
        return f"scaling down old RS {v.name} to {v.desired} ({keeps})"
    total_wanted = new.desired + sum(v.desired for v in old)
    if new.desired < want and total_wanted < ceiling:
        return f"scaling up new RS to {min(want, new.desired + ceiling - total_wanted)} ({allows})"
    if new.available < new.desired:
        return f"waiting for new pods to become available ({keeps})"
    available = new.available + sum(v.available for v in old)
    old_left = sum(v.desired for v in old)
    if old_left and available > floor:
        return f"scaling down old ReplicaSets ({old_left} old pod(s) left; {keeps})"
    if old_left:
        return f"waiting for pods to become available before removing {old_left} old pod(s) ({keeps})"
    if new.desired < want:
        return f"scaling up new RS to {want} ({allows})"
    return f"waiting for the controller to report the new pods ({new.available}/{want} available)"
