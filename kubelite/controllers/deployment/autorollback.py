"""Rollouts that fail fast and roll themselves back (kubelite's own; not in upstream).

Upstream notices a broken rollout only when progressDeadlineSeconds (10 minutes by
default) passes, and never undoes it.  This module watches the pods of the newest
ReplicaSet while its rollout is in flight (the Progressing condition is not yet
NewReplicaSetAvailable):

- A pod is *failing* when a container waits in ErrImagePull, ImagePullBackOff,
  ErrImageNeverPull, InvalidImageName or CrashLoopBackOff, when a container was
  OOMKilled (now or at its last termination), or — only for Deployments that opt in
  with one of the annotations below — when the pod has not been Ready for
  ``failure-threshold-seconds``.
- Fail fast (every Deployment): progress.py turns the Progressing condition into
  ``False / NewPodsFailing`` naming the pod and its reason.  The condition keeps its
  lastUpdateTime, so the upstream progress deadline falls when it would have anyway, and
  kubectl's `rollout status` (which only reads ProgressDeadlineExceeded) is unchanged.
- Automatic rollback (``rollout.kubelite.dev/auto-rollback: "true"``): on a failing pod
  or ProgressDeadlineExceeded the controller copies the template of the last revision
  whose rollout completed back onto the Deployment, as `kubectl rollout undo` does, and
  says why in an event, the Progressing condition and ``rolled-back-from``.

Why it never loops: a rollback only ever goes to the template recorded in
``last-complete`` (written when a rollout completes), and never from it: once back on
that template nothing is rolled back again.  The failed template is not tried again
unless someone sets it again (a template change); ``rolled-back-from`` stays while the
Deployment runs the restored template and goes when the template changes.

The state annotations (``last-complete``, ``rolled-back-from``) are not copied onto
ReplicaSets (util's skip list), so `kubectl rollout undo` cannot bring stale ones back.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any, NamedTuple

from kubelite.api import meta
from kubelite.controllers.deployment import errorrate, util
from kubelite.controllers.deployment.context import DeploymentContext

Obj = dict[str, Any]

PREFIX = util.KUBELITE_ROLLOUT_PREFIX
AUTO_ROLLBACK = PREFIX + "auto-rollback"
FAILURE_THRESHOLD = PREFIX + "failure-threshold-seconds"
STRATEGY = PREFIX + "strategy"
LAST_COMPLETE = util.LAST_COMPLETE
ROLLED_BACK_FROM = util.ROLLED_BACK_FROM

NEW_PODS_FAILING = "NewPodsFailing"
AUTO_ROLLBACK_REASON = "AutoRollback"
# Long enough for a slow app to start, far below the 600 s progress deadline.
DEFAULT_FAILURE_THRESHOLD = 60.0

IMAGE_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")
CRASH_LOOP = "CrashLoopBackOff"
OOM_KILLED = "OOMKilled"
NOT_READY = "NotReady"
_FAILING_WAITING = frozenset((*IMAGE_FAILURES, CRASH_LOOP))
# Progressing reasons after which the rollout is no longer in flight (or is already failed).
_SETTLED = frozenset((util.NEW_RS_AVAILABLE, util.TIMED_OUT, util.FAILED_RS_CREATE))


class Settings(NamedTuple):
    """What a Deployment's annotations ask for."""

    auto_rollback: bool
    threshold: float | None  # seconds not Ready that count as failing; None: readiness not judged


class Failure(NamedTuple):
    """Why the new pods are failing: a reason, the pod that shows it, the runtime's words."""

    reason: str
    pod: str
    message: str = ""

    def summary(self) -> str:
        """One line for events, conditions and the CLI."""
        if not self.pod:  # a failure of the revision as a whole (its error rate)
            return f"{self.reason} ({self.message})" if self.message else self.reason
        return f"{self.reason} (pod {self.pod}: {self.message})" if self.message else f"{self.reason} (pod {self.pod})"

    def short(self) -> str:
        """The summary without a long runtime message (pull errors run to 500 characters)."""
        if len(self.message) <= 80:
            return self.summary()
        return self.reason if not self.pod else f"{self.reason} (pod {self.pod})"


def settings_of(d: Obj) -> Settings:
    """The Deployment's opt-ins; an unparsable threshold falls back to the default."""
    ann = meta.annotations_of(d)
    opt = (ann.get(AUTO_ROLLBACK) or "").strip().lower()
    # A canary or blue/green rollout (canary.py) rolls back its failing new pods unless told not to.
    weighted = (ann.get(STRATEGY) or "").strip().lower() in ("canary", "blue-green")
    auto = opt == "true" or (weighted and opt != "false")
    threshold: float | None = None
    raw = ann.get(FAILURE_THRESHOLD)
    if raw is not None:
        try:
            threshold = float(raw.strip())
        except ValueError:
            threshold = None
        if threshold is not None and not (0 < threshold < 1e9):
            threshold = None
        if threshold is None:
            threshold = DEFAULT_FAILURE_THRESHOLD
    elif auto:
        threshold = DEFAULT_FAILURE_THRESHOLD
    return Settings(auto, threshold)


# --- pods ------------------------------------------------------------------------------

def _statuses(pod: Obj) -> list[Obj]:
    st = pod.get("status") or {}
    return [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]


def pod_failure(pod: Obj) -> Failure | None:
    """A failure the pod shows whatever the time (image pull, crash loop, OOM), or None."""
    if meta.is_deleting(pod):
        return None
    name = meta.name(pod)
    found: Failure | None = None
    for cs in _statuses(pod):
        state, last = cs.get("state") or {}, cs.get("lastState") or {}
        for term in (state.get("terminated"), last.get("terminated")):
            if term and term.get("reason") == OOM_KILLED:
                # The most telling reason: a crash loop caused by OOM is reported as OOM.
                return Failure(OOM_KILLED, name, f'container "{cs.get("name")}" was OOMKilled '
                                                 f'(exit code {term.get("exitCode", 137)})')
        waiting = state.get("waiting") or {}
        if found is None and waiting.get("reason") in _FAILING_WAITING:
            found = Failure(waiting["reason"], name, str(waiting.get("message") or ""))
    return found


def not_ready_seconds(pod: Obj, now: _dt.datetime) -> float | None:
    """How long the pod has not been Ready (None when Ready or being deleted)."""
    if meta.is_deleting(pod):
        return None
    ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") == "True":
        return None
    since = meta.parse_time((ready or {}).get("lastTransitionTime")) or meta.parse_time(
        meta.meta(pod).get("creationTimestamp"))
    if since is None:
        return None
    return max(0.0, (now - since).total_seconds())


def _not_ready_message(pod: Obj, seconds: float) -> str:
    st = pod.get("status") or {}
    why = next((f'{c.get("reason")}: {c.get("message")}' if c.get("message") else str(c.get("reason"))
                for c in st.get("conditions") or []
                if c.get("status") == "False" and c.get("reason") and c.get("type") in ("PodScheduled", "Ready")), "")
    text = f"not Ready for {int(seconds)}s"
    return f"{text} ({why})" if why else text


def new_pods_failure(pods: Iterable[Obj], now: _dt.datetime,
                     threshold: float | None) -> tuple[Failure | None, float | None]:
    """(first failure among the pods, seconds until a not-Ready pod reaches the threshold).

    Pods are taken oldest first, so the failure reported stays the same from sync to
    sync; definite failures win over slow readiness."""
    ordered = sorted(pods, key=lambda p: (meta.meta(p).get("creationTimestamp") or "", meta.name(p)))
    for pod in ordered:
        f = pod_failure(pod)
        if f is not None:
            return f, None
    if threshold is None:
        return None, None
    wait: float | None = None
    for pod in ordered:
        secs = not_ready_seconds(pod, now)
        if secs is None:
            continue
        if secs >= threshold:
            return Failure(NOT_READY, meta.name(pod), _not_ready_message(pod, secs)), None
        left = threshold - secs
        wait = left if wait is None else min(wait, left)
    return None, wait


# --- deployments -----------------------------------------------------------------------

def in_flight(d: Obj) -> bool:
    """The rollout of the current template has not completed (nor already failed)."""
    cond = util.get_condition(d.get("status"), "Progressing")
    if cond is not None:
        return cond.get("reason") not in _SETTLED
    return not util.deployment_complete(d, d.get("status") or {})


def template_hash(rs: Obj | None) -> str:
    """The ReplicaSet's pod-template-hash label ("" when missing)."""
    if rs is None:
        return ""
    return meta.labels(rs).get(util.POD_TEMPLATE_HASH, "")


def just_completed(d: Obj, new_rs: Obj | None) -> bool:
    """The status says the current template's rollout is complete."""
    if new_rs is None:
        return False
    status = d.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.meta(d).get("generation") or 0):
        return False
    cond = util.get_condition(status, "Progressing")
    if cond is not None and cond.get("reason") != util.NEW_RS_AVAILABLE:
        return False
    return util.deployment_complete(d, status) and util.status_int(new_rs, "availableReplicas") >= util.replicas(d)


def rollback_target(d: Obj, new_rs: Obj | None, old_rss: Iterable[Obj]) -> Obj | None:
    """The old ReplicaSet of the last completed template (never the current one)."""
    want = meta.annotations_of(d).get(LAST_COMPLETE, "")
    if not want or want == template_hash(new_rs):
        return None
    for rs in old_rss:
        if template_hash(rs) == want and not meta.is_deleting(rs):
            return rs
    return None


def failing_condition(current: Obj | None, rs_name: str, failure: Failure, now: _dt.datetime,
                      extra: str = "") -> Obj:
    """Progressing=False/NewPodsFailing; the deadline clock (lastUpdateTime) is kept."""
    msg = f'ReplicaSet "{rs_name}" has failing pods: {failure.summary()}{extra}'
    cond = util.new_condition("Progressing", "False", NEW_PODS_FAILING, msg, now)
    if current is not None:
        if current.get("lastUpdateTime"):
            cond["lastUpdateTime"] = current["lastUpdateTime"]
        if current.get("status") == "False" and current.get("lastTransitionTime"):
            cond["lastTransitionTime"] = current["lastTransitionTime"]
    return cond


def _replace_condition(status: Obj, cond: Obj) -> None:
    util.remove_condition(status, cond["type"])
    util.set_condition(status, cond)


def apply_to_status(d: Obj, status: Obj, new_rs: Obj | None, failure: Failure | None, now: _dt.datetime) -> None:
    """Fail fast and explain a rollback in the Progressing condition about to be written."""
    cond = util.get_condition(status, "Progressing")
    if cond is None or new_rs is None:
        return
    reason = cond.get("reason")
    if failure is not None and reason not in _SETTLED:
        new = failing_condition(cond, meta.name(new_rs), failure, now)
        if new["message"] != cond.get("message") or reason != NEW_PODS_FAILING:
            _replace_condition(status, new)
        return
    if failure is None and reason == NEW_PODS_FAILING:
        # The pods recovered (or were replaced): back to an ordinary rollout in progress.
        new = util.new_condition("Progressing", "True", util.RS_UPDATED,
                                 f'ReplicaSet "{meta.name(new_rs)}" is progressing.', now)
        new["lastUpdateTime"] = cond.get("lastUpdateTime") or new["lastUpdateTime"]
        _replace_condition(status, new)
        cond = new
    note = rollback_note(d)
    if note and reason != util.TIMED_OUT and note not in str(cond.get("message")):
        cond["message"] = f'{cond.get("message")} {note}'


def rollback_note(d: Obj) -> str:
    """The sentence a condition carries while the Deployment runs a restored template."""
    src = meta.annotations_of(d).get(ROLLED_BACK_FROM)
    return f"Rolled back automatically from {src}." if src else ""


def on_restored_template(d: Obj, rss: list[Obj]) -> bool:
    """The Deployment runs the template an automatic rollback restored (for clients)."""
    ann = meta.annotations_of(d)
    if ROLLED_BACK_FROM not in ann:
        return False
    owned = [rs for rs in rss if (meta.controller_ref(rs) or {}).get("uid") == meta.uid(d)]
    new_rs = util.find_new_rs(d, owned)
    return new_rs is not None and template_hash(new_rs) == ann.get(LAST_COMPLETE)


def _revision_text(rs: Obj) -> str:
    try:
        return str(util.revision(rs))
    except ValueError:
        return "?"


# --- the controller's step -----------------------------------------------------------------

async def reconcile(dc: DeploymentContext, d: Obj, rs_list: list[Obj], pod_map: dict[str, list[Obj]]) -> bool:
    """Before the strategy runs: keep the state annotations, roll back a failing rollout.

    ``pod_map`` is the controller's RS uid → pods of this sync.  Returns True when the
    Deployment's template was rolled back (the sync ends there; the write brings the
    next one)."""
    ann = meta.annotations_of(d)
    if ROLLED_BACK_FROM not in ann and not settings_of(d).auto_rollback:
        return False  # not opted in: nothing to look at (and no template comparisons)
    new_rs = util.find_new_rs(d, rs_list)
    if ROLLED_BACK_FROM in ann and (new_rs is None or template_hash(new_rs) != ann.get(LAST_COMPLETE)):
        # The template moved on from the one restored: the record has served its purpose.
        meta.meta(d)["annotations"].pop(ROLLED_BACK_FROM, None)
        await dc.update(d)
        ann = meta.annotations_of(d)
    settings = settings_of(d)
    if not settings.auto_rollback or new_rs is None:
        return False
    if just_completed(d, new_rs):
        h = template_hash(new_rs)
        if h and ann.get(LAST_COMPLETE) != h:
            meta.meta(d).setdefault("annotations", {})[LAST_COMPLETE] = h
            await dc.update(d)
        return False
    failure = trigger(d, pod_map.get(meta.uid(new_rs), []), dc.now(), settings)
    if failure is None and in_flight(d):
        failure = canary_error_rate(dc, d, new_rs)
    if failure is None:
        return False
    old_rss = [rs for rs in rs_list if meta.uid(rs) != meta.uid(new_rs)]
    target = rollback_target(d, new_rs, old_rss)
    if target is None:
        return False
    await roll_back(dc, d, new_rs, target, failure)
    return True


def canary_error_rate(dc: DeploymentContext, d: Obj, new_rs: Obj) -> Failure | None:
    """The canary's error rate over its step, when it is over the Deployment's limit (errorrate.py)."""
    h = template_hash(new_rs)
    if not errorrate.judged(d) or meta.annotations_of(d).get(util.CANARY_REVISION) != h:
        return None
    try:
        limits = errorrate.limits_of(d)
    except ValueError as e:
        # Not judged until fixed (no polling either); said once per sync, like bad canary steps.
        dc.event(d, "Warning", errorrate.INVALID_REASON, f"Invalid canary analysis: {e}; the error rate is not checked")
        return None
    if limits is None:
        return None
    verdict = errorrate.verdict(errorrate.step_counts(dc.proxy_leases(), d, h), limits)
    if verdict is None:
        dc.enqueue_after(d, errorrate.POLL_INTERVAL)  # the proxies publish every ~2 s
        return None
    return Failure(errorrate.REASON, "", verdict)


def trigger(d: Obj, new_rs_pods: list[Obj], now: _dt.datetime, settings: Settings) -> Failure | None:
    """Why the current rollout should be rolled back now, or None."""
    status = d.get("status") or {}
    cond = util.get_condition(status, "Progressing")
    observed = int(status.get("observedGeneration") or 0) >= int(meta.meta(d).get("generation") or 0)
    if cond is not None and cond.get("reason") == util.TIMED_OUT and observed:
        return Failure(util.TIMED_OUT, "-", str(cond.get("message") or ""))
    if not in_flight(d):
        return None
    failure, _ = new_pods_failure(new_rs_pods, now, settings.threshold)
    return failure


async def roll_back(dc: DeploymentContext, d: Obj, new_rs: Obj, target: Obj, failure: Failure) -> None:
    """Copy the target's template onto the Deployment (as `rollout undo`), say why."""
    name = meta.name(d)
    own = {k: v for k, v in meta.annotations_of(d).items() if k.startswith(PREFIX)}
    util.set_from_rs_template(d, target["spec"]["template"])
    util.set_deployment_annotations_to(d, target)
    ann = meta.meta(d)["annotations"]
    # The Deployment's own opt-ins and state win over whatever the old RS carried.
    for k in [k for k in ann if k.startswith(PREFIX)]:
        del ann[k]
    ann.update(own)
    src = f"{meta.name(new_rs)} (revision {_revision_text(new_rs)})"
    why = failure.summary() if failure.reason != util.TIMED_OUT else util.TIMED_OUT
    ann[ROLLED_BACK_FROM] = f"{src}: {failure.short() if failure.reason != util.TIMED_OUT else util.TIMED_OUT}"
    if util.paused_at_step(d):
        d["spec"]["paused"] = False  # the canary's pause step held the rollout, not a person
    status_before = util.get_condition(d.get("status"), "Progressing")
    await dc.update(d)
    to = f'revision {_revision_text(target)} ("{meta.name(target)}")'
    dc.event(d, "Warning", AUTO_ROLLBACK_REASON,
             f'Rolled back deployment "{name}" to {to}: new pods of {src} are failing: {why}')
    if failure.reason == util.TIMED_OUT:
        return  # the upstream condition stays as it is
    status = d.setdefault("status", {})
    _replace_condition(status, failing_condition(status_before, meta.name(new_rs), failure, dc.now(),
                                                 f"; rolled back automatically to {to}"))
    await dc.update_status(d)


def fail_fast(dc: DeploymentContext, d: Obj, new_status: Obj, new_rs: Obj | None, now: _dt.datetime) -> None:
    """progress.py's hook: judge the new pods and adjust the Progressing condition to write."""
    cond = util.get_condition(new_status, "Progressing")
    if new_rs is None or cond is None:
        return
    failure: Failure | None = None
    if cond.get("reason") not in _SETTLED:
        failure, wait = new_pods_failure(dc.replicaset_pods(d, new_rs), now, settings_of(d).threshold)
        if wait is not None:
            # No event fires when a pod has merely stayed unready: look again when it counts.
            dc.enqueue_after(d, wait + 0.5)
    apply_to_status(d, new_status, new_rs, failure, now)
