"""The Job controller: run a Job's pods to completion, as upstream's job_controller.go.

Wiring: informers on Jobs and Pods; handlers only enqueue Job keys (and lower the
create/delete/finalizer expectations when a pod we touched shows up).  A pod that still
carries the tracking finalizer but whose Job is gone or finished is queued as
``orphan/<ns>/<pod>`` and loses the finalizer.  One ``sync(key)`` moves a Job one step:

1. claim its pods; count the newly finished ones (those still holding the
   ``batch.kubernetes.io/job-tracking`` finalizer) and update the back-off record;
2. decide whether the Job is finished: a FailureTarget / SuccessCriteriaMet condition
   already there, a FailJob pod failure policy rule, the back-off limit, the active
   deadline, failed indexes;
3. finished: delete the active pods.  Otherwise ``manage``: suspended → delete all; too
   many → delete the surplus; too few → create (after the back-off, slow start, one
   pod per pending index for Indexed Jobs);
4. track: put finished pods' UIDs into ``status.uncountedTerminatedPods``, write status,
   remove their finalizers, move them into the counters, write status again; once no
   pod is uncounted and none is terminating, turn SuccessCriteriaMet into Complete
   (FailureTarget into Failed) and record the event.

Conditions and events are upstream's (1.31+): SuccessCriteriaMet then Complete
(reason CompletionsReached), FailureTarget then Failed (BackoffLimitExceeded,
DeadlineExceeded, PodFailurePolicy, FailedIndexes, MaxFailedIndexesExceeded), Suspended
(JobSuspended / JobResumed).
"""
from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import logging
from collections.abc import Callable
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import JOBS, PODS
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers.expectations import Expectations
from kubelite.controllers.job import context as jc
from kubelite.controllers.job import manage, tracking
from kubelite.controllers.job import util as ju
from kubelite.controllers.job.context import SyncContext
from kubelite.controllers.ownerref import controlling_owner
from kubelite.controllers.podcontrol import (
    claim,
    is_pod_active,
    is_pod_ready,
    pod_key,
    selector_matcher,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "Job"
API_VERSION = "batch/v1"
ORPHAN_PREFIX = "orphan/"
_REMOVE_FINALIZER = manage.REMOVE_FINALIZER

class JobController:
    """Reconciles Jobs against their pods."""

    name = "job"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 recorder: Recorder | None = None, now: Callable[[], _dt.datetime] = meta.now,
                 backoff_base: float = ju.DEFAULT_BACKOFF, backoff_cap: float = ju.MAX_BACKOFF):
        self.job_client = client.resource(JOBS)
        self.pod_client = client.resource(PODS)
        self.job_informer = factory.informer(JOBS)
        self.pod_informer = factory.informer(PODS)
        self.recorder: Recorder = recorder or EventRecorder(client, "job-controller")
        self.expectations = Expectations()
        self.finalizer_expectations: dict[str, set[str]] = {}
        self.backoff: dict[str, ju.BackoffRecord] = {}
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.workers = workers
        self.now = now
        self.queue = WorkQueue("job")
        self.job_informer.add_handler(self._add_job, self._update_job, self._delete_job)
        self.pod_informer.add_handler(self._add_pod, self._update_pod, self._delete_pod)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, wait for their first list, run workers until ``stop``."""
        informers = (self.job_informer, self.pod_informer)
        for inf in informers:
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in informers))
        await process_until(self.queue, self.sync, stop, self.workers)

    # -- event handlers: enqueue only ----------------------------------------------------
    def _resolve(self, pod: Obj) -> Obj | None:
        return controlling_owner(self.job_informer, pod, KIND)

    def _add_job(self, job: Obj) -> None:
        self.queue.add(meta.key(job))

    def _update_job(self, old: Obj, cur: Obj) -> None:
        if meta.uid(old) != meta.uid(cur):
            self._delete_job(old)
        self.queue.add(meta.key(cur))

    def _delete_job(self, job: Obj) -> None:
        key = meta.key(job)
        self.expectations.delete(key)
        self.finalizer_expectations.pop(key, None)
        self.queue.add(key)
        for pod in self.pod_informer.list(meta.namespace(job)):
            ref = meta.controller_ref(pod)
            if ref is not None and ref.get("uid") == meta.uid(job) and ju.has_tracking_finalizer(pod):
                self.queue.add(ORPHAN_PREFIX + pod_key(pod))

    def _finalizer_gone(self, pod: Obj) -> None:
        job = self._resolve(pod)
        if job is not None:
            self.finalizer_expectations.get(meta.key(job), set()).discard(meta.uid(pod))

    def _add_pod(self, pod: Obj) -> None:
        job = self._resolve(pod)
        if job is None:
            self._maybe_orphan(pod)
            return
        if meta.is_deleting(pod):
            self.expectations.deletion_observed(meta.key(job), pod_key(pod))
        else:
            self.expectations.creation_observed(meta.key(job))
        self.queue.add(meta.key(job))

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(cur):
            return
        if ju.has_tracking_finalizer(old) and not ju.has_tracking_finalizer(cur):
            self._finalizer_gone(cur)
        old_job = self._resolve(old)
        job = self._resolve(cur)
        if old_job is not None and (job is None or meta.uid(old_job) != meta.uid(job)):
            self.queue.add(meta.key(old_job))
        if job is None:
            self._maybe_orphan(cur)
            return
        if meta.is_deleting(cur) and not meta.is_deleting(old):
            self.expectations.deletion_observed(meta.key(job), pod_key(cur))
        self.queue.add(meta.key(job))

    def _delete_pod(self, pod: Obj) -> None:
        self._finalizer_gone(pod)
        job = self._resolve(pod)
        if job is None:
            return
        self.expectations.deletion_observed(meta.key(job), pod_key(pod))
        self.queue.add(meta.key(job))

    def _maybe_orphan(self, pod: Obj) -> None:
        if ju.has_tracking_finalizer(pod):
            self.queue.add(ORPHAN_PREFIX + pod_key(pod))

    # -- orphans -------------------------------------------------------------------------
    async def _sync_orphan(self, pkey: str) -> None:
        """Remove the tracking finalizer from a pod whose Job is gone or finished."""
        pod = self.pod_informer.get(pkey)
        if pod is None or not ju.has_tracking_finalizer(pod):
            return
        ref = meta.controller_ref(pod)
        if ref is not None and (ref.get("kind") != KIND or ref.get("apiVersion") != API_VERSION):
            return  # controlled by something else: not ours to clean up
        job = self._resolve(pod)
        if job is not None and not ju.is_finished(job) and not meta.is_deleting(job):
            return  # the Job's own sync counts it
        if job is not None and ju.is_finished(job) and is_pod_active(pod):
            return  # still running: the finished Job's sync deletes it first
        await self._patch_remove_finalizer(pod)

    async def _patch_remove_finalizer(self, pod: Obj) -> None:
        try:
            await self.pod_client.patch(meta.name(pod), _REMOVE_FINALIZER, meta.namespace(pod), patch_type="strategic")
        except NotFound:
            pass

    # -- sync ----------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """Move one Job (or one orphan pod) one step."""
        if key.startswith(ORPHAN_PREFIX):
            await self._sync_orphan(key[len(ORPHAN_PREFIX):])
            return
        cached = self.job_informer.get(key)
        if cached is None:
            self.expectations.delete(key)
            self.finalizer_expectations.pop(key, None)
            self.backoff.pop(key, None)
            return
        if jc.spec(cached).get("managedBy") not in (None, "kubernetes.io/job-controller"):
            return
        job = copy.deepcopy(cached)
        job.setdefault("kind", KIND)
        job.setdefault("apiVersion", API_VERSION)
        if ju.is_finished(job):
            self.backoff.pop(key, None)
            await self._cleanup_finished(job)
            return
        status = job.setdefault("status", {})
        unc = status.get("uncountedTerminatedPods") or {}
        status["uncountedTerminatedPods"] = {k: list(v) for k, v in unc.items() if v}
        satisfied = self.expectations.satisfied(key)
        pods = await self._pods_for_job(job)
        active_pods = [p for p in pods if is_pod_active(p)]
        ctx = SyncContext(job=job, pods=pods, active_pods=active_pods, ready=sum(1 for p in active_pods if is_pod_ready(p)),
                   terminating=sum(1 for p in pods if ju.is_terminating(p)),
                   uncounted_succeeded=set(unc.get("succeeded") or []), uncounted_failed=set(unc.get("failed") or []),
                   expected_rm_finalizers=set(self.finalizer_expectations.get(key, set())))
        active = len(active_pods)
        new_succeeded, new_failed = self._new_finished_pods(ctx)
        ctx.succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(ctx.uncounted_succeeded)
        ctx.failed = (int(status.get("failed") or 0) + self._counted_failures(job, new_failed)
                      + len(ctx.uncounted_failed))
        now = self.now()
        if not status.get("startTime") and not jc.suspended(job):
            status["startTime"] = meta.rfc3339(now)
        ctx.backoff = ju.new_backoff_record(self.backoff.get(key, ju.BackoffRecord()), new_succeeded, new_failed)

        self._decide_finished(ctx, key, now)
        if jc.is_indexed(job):
            self._indexes(ctx, now)

        manage_error: Exception | None = None
        suspend_changed = False
        if ctx.finished_condition is not None:
            deleted_ready, deleted, err = await manage.delete_active(self, job, ctx.active_pods)
            if deleted != active or not satisfied:
                ctx.finished_condition = None  # pods or finalizers remain: finish next time
            active -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
            manage_error = err
        else:
            manage_called = False
            if satisfied and not meta.is_deleting(job):
                active, manage_error = await manage.manage(self, ctx, key, now)
                manage_called = True
            completions = jc.spec(job).get("completions")
            complete = ctx.succeeded > 0 and active == 0 if completions is None else \
                ctx.succeeded >= int(completions) and active == 0
            if complete:
                ctx.finished_condition = ju.new_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                                          "Reached expected number of succeeded pods", now)
            elif manage_called:
                suspend_changed = self._suspend_condition(job, active, now)

        needs = (suspend_changed or active != int(status.get("active") or 0) or ctx.ready != status.get("ready")
                 or ctx.terminating != status.get("terminating"))
        status["active"] = active
        status["ready"] = ctx.ready
        status["terminating"] = ctx.terminating
        await tracking.track(self, ctx, key, needs)
        if manage_error is not None:
            raise manage_error

    async def _cleanup_finished(self, job: Obj) -> None:
        """A finished Job's leftover pods: delete the running ones, free the finished ones."""
        for pod in await self._pods_for_job(job, adopt=False):
            if not ju.has_tracking_finalizer(pod):
                continue
            if is_pod_active(pod):
                try:
                    await self.pod_client.delete(meta.name(pod), meta.namespace(pod))
                except NotFound:
                    continue
            await self._patch_remove_finalizer(pod)

    async def _pods_for_job(self, job: Obj, adopt: bool = True) -> list[Obj]:
        try:
            matches = selector_matcher(jc.spec(job).get("selector"))
        except StatusError as e:
            log.warning("job %s has an invalid selector: %s", meta.key(job), e.message)
            return []
        pods = self.pod_informer.list(meta.namespace(job))
        if not adopt:
            uid = meta.uid(job)
            return [p for p in pods if (meta.controller_ref(p) or {}).get("uid") == uid]

        async def can_adopt() -> None:
            fresh = await self.job_client.get(meta.name(job), meta.namespace(job))
            if meta.uid(fresh) != meta.uid(job) or meta.is_deleting(fresh):
                raise RuntimeError(f"job {meta.key(job)} is gone or being deleted")

        async def patch(pod: Obj, body: Obj) -> Obj:
            out = await self.pod_client.patch(meta.name(pod), body, meta.namespace(pod))
            released = all(r.get("uid") != meta.uid(job) for r in body["metadata"].get("ownerReferences") or [])
            if released and ju.has_tracking_finalizer(pod):
                # A released pod is no longer this Job's to count.
                out = await self.pod_client.patch(meta.name(pod), _REMOVE_FINALIZER, meta.namespace(pod),
                                                  patch_type="strategic")
            return out

        return await claim(pods, owner=job, api_version=API_VERSION, kind=KIND,
                           matches=lambda p: matches(meta.labels(p)), patch=patch, can_adopt=can_adopt)

    def _valid_tracked(self, ctx: SyncContext, pod: Obj, uncounted: set[str]) -> bool:
        uid = meta.uid(pod)
        if not ju.has_tracking_finalizer(pod) or uid in uncounted or uid in ctx.expected_rm_finalizers:
            return False
        if jc.is_indexed(ctx.job):
            ix = ju.completion_index(pod)
            return 0 <= ix < jc.completions(ctx.job)
        return True

    def _new_finished_pods(self, ctx: SyncContext) -> tuple[list[Obj], list[Obj]]:
        succeeded = [p for p in ctx.pods if self._valid_tracked(ctx, p, ctx.uncounted_succeeded)
                     and ju.phase(p) == "Succeeded"]
        failed = [p for p in ctx.pods if self._valid_tracked(ctx, p, ctx.uncounted_failed)
                  and ju.is_pod_failed(p, ctx.job)]
        return succeeded, failed

    @staticmethod
    def _counted_failures(job: Obj, failed: list[Obj]) -> int:
        policy = jc.spec(job).get("podFailurePolicy")
        return sum(1 for p in failed if ju.match_pod_failure_policy(policy, p).count_failed)

    def _failure(self, reason: str, message: str, now: _dt.datetime) -> Obj:
        return ju.new_condition("FailureTarget", "True", reason, message, now)

    def _decide_finished(self, ctx: SyncContext, key: str, now: _dt.datetime) -> None:
        job, status, spec = ctx.job, ctx.job["status"], jc.spec(ctx.job)
        scm = ju.find_condition(status, "SuccessCriteriaMet")
        if scm is not None and scm.get("status") == "True":
            ctx.finished_condition = scm
            return
        ft = ju.find_condition(status, "FailureTarget")
        if ft is not None and ft.get("status") == "True":
            ctx.finished_condition = ju.new_condition("Failed", "True", ft.get("reason", ""), ft.get("message", ""), now)
            return
        policy = spec.get("podFailurePolicy")
        if policy is not None:
            for p in ctx.pods:
                if ju.is_pod_failed(p, job):
                    m = ju.match_pod_failure_policy(policy, p)
                    if m.fail_job_message is not None:
                        ctx.finished_condition = self._failure("PodFailurePolicy", m.fail_job_message, now)
                        return
        if ctx.failed > int(spec.get("backoffLimit", 6)) or self._past_backoff_limit_on_failure(job, ctx.pods):
            ctx.finished_condition = self._failure("BackoffLimitExceeded", "Job has reached the specified backoff limit",
                                                   now)
            return
        deadline = spec.get("activeDeadlineSeconds")
        start = meta.parse_time(status.get("startTime"))
        if deadline is not None and start is not None and not jc.suspended(job):
            left = int(deadline) - (now - start).total_seconds()
            if left <= 0:
                ctx.finished_condition = self._failure("DeadlineExceeded",
                                                       "Job was active longer than specified deadline", now)
            else:
                self.queue.add_after(key, left)

    @staticmethod
    def _past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
        """restartPolicy OnFailure: container restarts of running pods count against the limit."""
        tmpl_spec = (jc.spec(job).get("template") or {}).get("spec") or {}
        if tmpl_spec.get("restartPolicy") != "OnFailure":
            return False
        total = 0
        for p in pods:
            if ju.phase(p) in ("Running", "Pending"):
                st = p.get("status") or {}
                for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
                    total += int(cs.get("restartCount") or 0)
        limit = int(jc.spec(job).get("backoffLimit", 6))
        return total > 0 if limit == 0 else total >= limit

    def _indexes(self, ctx: SyncContext, now: _dt.datetime) -> None:
        job, status, spec = ctx.job, ctx.job["status"], jc.spec(ctx.job)
        completions = jc.completions(job)
        ctx.prev_succeeded_indexes = ju.parse_indexes(status.get("completedIndexes"), completions)
        new = {ju.completion_index(p) for p in ctx.pods
               if ju.phase(p) == "Succeeded" and ju.has_tracking_finalizer(p)
               and 0 <= ju.completion_index(p) < completions}
        ctx.succeeded_indexes = sorted(set(ctx.prev_succeeded_indexes) | new)
        ctx.succeeded = len(ctx.succeeded_indexes)
        if jc.per_index(job):
            self._failed_indexes(ctx, now)
        if ctx.finished_condition is None:
            msg = ju.match_success_policy(spec.get("successPolicy"), completions, ctx.succeeded_indexes)
            if msg is not None:
                ctx.finished_condition = ju.new_condition("SuccessCriteriaMet", "True", "SuccessPolicy", msg, now)

    def _failed_indexes(self, ctx: SyncContext, now: _dt.datetime) -> None:
        """backoffLimitPerIndex: which indexes failed for good, and which failed pods wait for
        their replacement to inherit the index's failure count."""
        job, status, spec = ctx.job, ctx.job["status"], jc.spec(ctx.job)
        completions = jc.completions(job)
        limit = int(spec["backoffLimitPerIndex"])
        policy = spec.get("podFailurePolicy")
        failed = set(ju.parse_indexes(status.get("failedIndexes"), completions))
        for p in ctx.pods:
            if not (ju.is_pod_failed(p, job) and ju.has_tracking_finalizer(p)):
                continue
            ix = ju.completion_index(p)
            if not 0 <= ix < completions:
                continue
            m = ju.match_pod_failure_policy(policy, p)
            if m.action == "FailIndex" or (m.count_failed and ju.index_failure_count(p) >= limit):
                failed.add(ix)
        ctx.failed_indexes = sorted(failed)
        if ctx.finished_condition is None:
            mfi = spec.get("maxFailedIndexes")
            if mfi is not None and len(failed) > int(mfi):
                ctx.finished_condition = self._failure(
                    "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes", now)
            elif failed and len(failed) + len(ctx.succeeded_indexes) >= completions:
                ctx.finished_condition = self._failure("FailedIndexes", "Job has failed indexes", now)
        active_ix = {ju.completion_index(p) for p in ctx.active_pods}
        delayed: dict[int, Obj] = {}
        for p in ctx.pods:
            if not self._valid_tracked(ctx, p, set()) or not ju.is_pod_failed(p, job):
                continue
            ix = ju.completion_index(p)
            if ix in ctx.succeeded_indexes or ix in failed or ix in active_ix:
                continue
            last = delayed.get(ix)
            if last is None or (ju.index_absolute_failure_count(last) <= ju.index_absolute_failure_count(p)
                                and ju.finished_time(p) >= ju.finished_time(last)):
                delayed[ix] = p
        ctx.delayed_per_index = delayed

    def _suspend_condition(self, job: Obj, active: int, now: _dt.datetime) -> bool:
        status = job["status"]
        if jc.suspended(job):
            changed = ju.ensure_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now)
            if changed:
                self.recorder.event(job, "Normal", "Suspended", "Job suspended")
            if status.get("startTime") and active == 0:
                # Suspended with nothing running: the Job has not started (again) yet, so the
                # active deadline cannot expire meanwhile and counts from the resume.
                status.pop("startTime")
                changed = True
            return changed
        changed = ju.ensure_condition(status, "Suspended", "False", "JobResumed", "Job resumed", now)
        if changed:
            self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            # The active deadline counts from the resume, as for a Job created suspended.
            status["startTime"] = meta.rfc3339(now)
        return changed

    # -- pods ----------------------------------------------------------------------------

    # -- status tracking -----------------------------------------------------------------

