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
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import JOBS, PODS
from kubelite.client.errors import Invalid, NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers.expectations import Expectations
from kubelite.controllers.job import util as ju
from kubelite.controllers.podcontrol import (
    claim,
    is_pod_active,
    is_pod_ready,
    namespace_terminating,
    pod_from_template,
    pod_key,
    rank_for_deletion,
    selector_matcher,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "Job"
API_VERSION = "batch/v1"
ORPHAN_PREFIX = "orphan/"
_REMOVE_FINALIZER = {"metadata": {"$deleteFromPrimitiveList/finalizers": [ju.TRACKING_FINALIZER]}}


@dataclass
class _Ctx:
    """What one sync learns about a Job (syncJobCtx)."""

    job: Obj
    pods: list[Obj]
    active_pods: list[Obj]
    ready: int
    terminating: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    expected_rm_finalizers: set[str]
    succeeded: int = 0
    failed: int = 0
    finished_condition: Obj | None = None
    backoff: ju.BackoffRecord = field(default_factory=ju.BackoffRecord)
    prev_succeeded_indexes: list[int] = field(default_factory=list)
    succeeded_indexes: list[int] = field(default_factory=list)
    failed_indexes: list[int] | None = None
    delayed_per_index: dict[int, Obj] = field(default_factory=dict)


def _spec(job: Obj) -> Obj:
    return job.get("spec") or {}


def _is_indexed(job: Obj) -> bool:
    return _spec(job).get("completionMode") == "Indexed"


def _per_index(job: Obj) -> bool:
    return _spec(job).get("backoffLimitPerIndex") is not None


def _suspended(job: Obj) -> bool:
    return bool(_spec(job).get("suspend"))


def _completions(job: Obj) -> int:
    return int(_spec(job).get("completions") or 0)


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
        ref = meta.controller_ref(pod)
        if ref is None or ref.get("kind") != KIND:
            return None
        job = self.job_informer.get(f"{meta.namespace(pod)}/{ref.get('name')}")
        if job is None or meta.uid(job) != ref.get("uid"):
            return None
        return job

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
        if _spec(cached).get("managedBy") not in (None, "kubernetes.io/job-controller"):
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
        ctx = _Ctx(job=job, pods=pods, active_pods=active_pods, ready=sum(1 for p in active_pods if is_pod_ready(p)),
                   terminating=sum(1 for p in pods if ju.is_terminating(p)),
                   uncounted_succeeded=set(unc.get("succeeded") or []), uncounted_failed=set(unc.get("failed") or []),
                   expected_rm_finalizers=set(self.finalizer_expectations.get(key, set())))
        active = len(active_pods)
        new_succeeded, new_failed = self._new_finished_pods(ctx)
        ctx.succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(ctx.uncounted_succeeded)
        ctx.failed = (int(status.get("failed") or 0) + self._counted_failures(job, new_failed)
                      + len(ctx.uncounted_failed))
        now = self.now()
        if not status.get("startTime") and not _suspended(job):
            status["startTime"] = meta.rfc3339(now)
        ctx.backoff = ju.new_backoff_record(self.backoff.get(key, ju.BackoffRecord()), new_succeeded, new_failed)

        self._decide_finished(ctx, key, now)
        if _is_indexed(job):
            self._indexes(ctx, now)

        manage_error: Exception | None = None
        suspend_changed = False
        if ctx.finished_condition is not None:
            deleted_ready, deleted, err = await self._delete_active(job, ctx.active_pods)
            if deleted != active or not satisfied:
                ctx.finished_condition = None  # pods or finalizers remain: finish next time
            active -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
            manage_error = err
        else:
            manage_called = False
            if satisfied and not meta.is_deleting(job):
                active, manage_error = await self._manage(ctx, key, now)
                manage_called = True
            completions = _spec(job).get("completions")
            complete = ctx.succeeded > 0 and active == 0 if completions is None else \
                ctx.succeeded >= int(completions) and active == 0
            if complete:
                ctx.finished_condition = ju.new_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                                          "Reached expected number of succeeded pods", now)
            elif manage_called:
                suspend_changed = self._suspend_condition(job, now)

        needs = (suspend_changed or active != int(status.get("active") or 0) or ctx.ready != status.get("ready")
                 or ctx.terminating != status.get("terminating"))
        status["active"] = active
        status["ready"] = ctx.ready
        status["terminating"] = ctx.terminating
        await self._track(ctx, key, needs)
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
            matches = selector_matcher(_spec(job).get("selector"))
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
            released = all(r.get("uid") != meta.uid(job) for r in body["metadata"].get("ownerReferences") or [])
            if released and ju.has_tracking_finalizer(pod):
                body["metadata"]["$deleteFromPrimitiveList/finalizers"] = [ju.TRACKING_FINALIZER]
                return await self.pod_client.patch(meta.name(pod), body, meta.namespace(pod), patch_type="strategic")
            return await self.pod_client.patch(meta.name(pod), body, meta.namespace(pod))

        return await claim(pods, owner=job, api_version=API_VERSION, kind=KIND,
                           matches=lambda p: matches(meta.labels(p)), patch=patch, can_adopt=can_adopt)

    def _valid_tracked(self, ctx: _Ctx, pod: Obj, uncounted: set[str]) -> bool:
        uid = meta.uid(pod)
        if not ju.has_tracking_finalizer(pod) or uid in uncounted or uid in ctx.expected_rm_finalizers:
            return False
        if _is_indexed(ctx.job):
            ix = ju.completion_index(pod)
            return 0 <= ix < _completions(ctx.job)
        return True

    def _new_finished_pods(self, ctx: _Ctx) -> tuple[list[Obj], list[Obj]]:
        succeeded = [p for p in ctx.pods if self._valid_tracked(ctx, p, ctx.uncounted_succeeded)
                     and ju.phase(p) == "Succeeded"]
        failed = [p for p in ctx.pods if self._valid_tracked(ctx, p, ctx.uncounted_failed)
                  and ju.is_pod_failed(p, ctx.job)]
        return succeeded, failed

    @staticmethod
    def _counted_failures(job: Obj, failed: list[Obj]) -> int:
        policy = _spec(job).get("podFailurePolicy")
        return sum(1 for p in failed if ju.match_pod_failure_policy(policy, p).count_failed)

    def _failure(self, reason: str, message: str, now: _dt.datetime) -> Obj:
        return ju.new_condition("FailureTarget", "True", reason, message, now)

    def _decide_finished(self, ctx: _Ctx, key: str, now: _dt.datetime) -> None:
        job, status, spec = ctx.job, ctx.job["status"], _spec(ctx.job)
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
        if deadline is not None and start is not None and not _suspended(job):
            left = int(deadline) - (now - start).total_seconds()
            if left <= 0:
                ctx.finished_condition = self._failure("DeadlineExceeded",
                                                       "Job was active longer than specified deadline", now)
            else:
                self.queue.add_after(key, left)

    @staticmethod
    def _past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
        """restartPolicy OnFailure: container restarts of running pods count against the limit."""
        tmpl_spec = (_spec(job).get("template") or {}).get("spec") or {}
        if tmpl_spec.get("restartPolicy") != "OnFailure":
            return False
        total = 0
        for p in pods:
            if ju.phase(p) in ("Running", "Pending"):
                st = p.get("status") or {}
                for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
                    total += int(cs.get("restartCount") or 0)
        limit = int(_spec(job).get("backoffLimit", 6))
        return total > 0 if limit == 0 else total >= limit

    def _indexes(self, ctx: _Ctx, now: _dt.datetime) -> None:
        job, status, spec = ctx.job, ctx.job["status"], _spec(ctx.job)
        completions = _completions(job)
        ctx.prev_succeeded_indexes = ju.parse_indexes(status.get("completedIndexes"), completions)
        new = {ju.completion_index(p) for p in ctx.pods
               if ju.phase(p) == "Succeeded" and ju.has_tracking_finalizer(p)
               and 0 <= ju.completion_index(p) < completions}
        ctx.succeeded_indexes = sorted(set(ctx.prev_succeeded_indexes) | new)
        ctx.succeeded = len(ctx.succeeded_indexes)
        if not _per_index(job):
            return
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

    def _suspend_condition(self, job: Obj, now: _dt.datetime) -> bool:
        status = job["status"]
        if _suspended(job):
            changed = ju.ensure_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now)
            if changed:
                self.recorder.event(job, "Normal", "Suspended", "Job suspended")
            return changed
        changed = ju.ensure_condition(status, "Suspended", "False", "JobResumed", "Job resumed", now)
        if changed:
            self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            # The active deadline counts from the resume, as for a Job created suspended.
            status["startTime"] = meta.rfc3339(now)
        return changed

    # -- pods ----------------------------------------------------------------------------
    async def _delete_active(self, job: Obj, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Delete pods keeping their finalizers (the tracking step counts them)."""
        async def one(pod: Obj) -> Exception | None:
            try:
                await self.pod_client.delete(meta.name(pod), meta.namespace(pod))
                self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.name(pod)}")
            except NotFound:
                pass
            except StatusError as e:
                self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {e.message}")
                return e
            return None
        results = await asyncio.gather(*(one(p) for p in pods))
        errors = [e for e in results if e is not None]
        ok = [p for p, e in zip(pods, results, strict=True) if e is None]
        return sum(1 for p in ok if is_pod_ready(p)), len(ok), (errors[0] if errors else None)

    async def _delete_job_pods(self, job: Obj, key: str, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Delete pods the Job no longer wants, finalizer first (they are not counted as failed)."""
        self.expectations.expect_deletions(key, [pod_key(p) for p in pods])

        async def one(pod: Obj) -> Exception | None:
            try:
                if ju.has_tracking_finalizer(pod):
                    await self.pod_client.patch(meta.name(pod), _REMOVE_FINALIZER, meta.namespace(pod),
                                                patch_type="strategic")
                await self.pod_client.delete(meta.name(pod), meta.namespace(pod))
                self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.name(pod)}")
            except NotFound:
                self.expectations.deletion_observed(key, pod_key(pod))
            except StatusError as e:
                self.expectations.deletion_observed(key, pod_key(pod))
                self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {e.message}")
                return e
            return None
        results = await asyncio.gather(*(one(p) for p in pods))
        errors = [e for e in results if e is not None]
        ok = [p for p, e in zip(pods, results, strict=True) if e is None]
        return sum(1 for p in ok if is_pod_ready(p)), len(ok), (errors[0] if errors else None)

    def _pods_for_removal(self, job: Obj, pods: list[Obj], at_least: int) -> list[Obj]:
        """Duplicate or out-of-range indexes first, then the least advanced pods."""
        rm: list[Obj] = []
        left = pods
        if _is_indexed(job):
            completions = _completions(job)
            seen: set[int] = set()
            left = []
            for p in sorted(pods, key=lambda p: (ju.completion_index(p), not is_pod_ready(p))):
                ix = ju.completion_index(p)
                if not 0 <= ix < completions or ix in seen:
                    rm.append(p)
                else:
                    seen.add(ix)
                    left.append(p)
        if len(rm) < at_least:
            rm += rank_for_deletion(left, [], None)[:at_least - len(rm)]
        return rm

    async def _manage(self, ctx: _Ctx, key: str, now: _dt.datetime) -> tuple[int, Exception | None]:
        """manageJob: the number of active pods after creating or deleting toward the target."""
        job = ctx.job
        spec = _spec(job)
        active = len(ctx.active_pods)
        parallelism = int(spec.get("parallelism") or 0)
        if _suspended(job):
            victims = self._pods_for_removal(job, ctx.active_pods, active)
            ready, removed, err = await self._delete_job_pods(job, key, victims)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed, err
        if spec.get("completions") is None:
            want = active if ctx.succeeded > 0 else parallelism
        else:
            want = max(0, min(int(spec["completions"]) - ctx.succeeded, parallelism))
        victims = self._pods_for_removal(job, ctx.active_pods, max(0, active - want))
        victims = victims[:ju.MAX_POD_CREATE_DELETE_PER_SYNC]
        if victims:
            ready, removed, err = await self._delete_job_pods(job, key, victims)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed, err
        terminating = ctx.terminating if ju.only_replace_failed_pods(job) else 0
        diff = want - terminating - active
        if diff <= 0:
            return active, None
        if not _per_index(job):
            wait = ju.remaining_backoff(ctx.backoff.failures_after_last_success, ctx.backoff.last_failure_time, now,
                                        self.backoff_base, self.backoff_cap)
            if wait > 0:
                self.queue.add_after(key, wait)
                return 0, None
        diff = min(diff, ju.MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int | None] = [None] * diff
        if _is_indexed(job):
            excluded = set(ctx.succeeded_indexes) | {ju.completion_index(p) for p in ctx.active_pods}
            excluded |= set(ctx.failed_indexes or [])
            todo = ju.first_pending_indexes(diff, _completions(job), excluded=excluded)
            if _per_index(job):
                todo, wait = self._indexes_ready_to_create(ctx, todo, now)
                if wait > 0:
                    self.queue.add_after(key, wait)
                    return 0, None
            indexes = list(todo)
        return await self._create_pods(ctx, key, active, indexes)

    def _indexes_ready_to_create(self, ctx: _Ctx, todo: list[int], now: _dt.datetime) -> tuple[list[int], float]:
        ready: list[int] = []
        waits: list[float] = []
        for ix in todo:
            last = ctx.delayed_per_index.get(ix)
            wait = 0.0 if last is None else ju.remaining_backoff(
                ju.index_absolute_failure_count(last) + 1, ju.finished_time(last), now, self.backoff_base,
                self.backoff_cap)
            if wait == 0:
                ready.append(ix)
            else:
                waits.append(wait)
        if ready:
            return ready, 0.0
        return [], min(waits, default=0.0)

    def _pod_for(self, ctx: _Ctx, index: int | None) -> Obj:
        job = ctx.job
        template = copy.deepcopy(_spec(job).get("template") or {})
        tmd = template.setdefault("metadata", {})
        fins = list(tmd.get("finalizers") or [])
        if ju.TRACKING_FINALIZER not in fins:
            fins.append(ju.TRACKING_FINALIZER)
        tmd["finalizers"] = fins
        if index is not None:
            tmd["annotations"] = {**(tmd.get("annotations") or {}), ju.COMPLETION_INDEX: str(index)}
            tmd["labels"] = {**(tmd.get("labels") or {}), ju.COMPLETION_INDEX: str(index)}
            pspec = template.setdefault("spec", {})
            pspec["hostname"] = f"{meta.name(job)}-{index}"
            env_ref = {"name": ju.COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
                "apiVersion": "v1", "fieldPath": f"metadata.annotations['{ju.COMPLETION_INDEX}']"}}}
            for c in (pspec.get("initContainers") or []) + (pspec.get("containers") or []):
                env = c.setdefault("env", [])
                if not any(e.get("name") == ju.COMPLETION_INDEX_ENV for e in env):
                    env.append(env_ref)
            if _per_index(job):
                self._index_failure_annotations(ctx, tmd, index)
        pod = pod_from_template(template, job, meta.new_controller_ref(job, API_VERSION, KIND))
        if index is not None:
            pod["metadata"]["generateName"] = f"{meta.name(job)}-{index}-"
        return pod

    def _index_failure_annotations(self, ctx: _Ctx, tmd: Obj, index: int) -> None:
        """Carry the index's failure count over from its last failed pod to the replacement."""
        last = ctx.delayed_per_index.get(index)
        counted = ignored = 0
        if last is not None:
            counted = ju.index_failure_count(last)
            ignored = ju.index_absolute_failure_count(last) - counted
            if ju.match_pod_failure_policy(_spec(ctx.job).get("podFailurePolicy"), last).count_failed:
                counted += 1
            else:
                ignored += 1
        ann = tmd.setdefault("annotations", {})
        ann[ju.INDEX_FAILURE_COUNT] = str(counted)
        if ignored > 0:
            ann[ju.INDEX_IGNORED_FAILURE_COUNT] = str(ignored)

    async def _create_pods(self, ctx: _Ctx, key: str, active: int, indexes: list[int | None]) -> tuple[int, Exception | None]:
        """Create one pod per entry of ``indexes`` in slow-start batches (1, 2, 4 …)."""
        job = ctx.job
        n = len(indexes)
        self.expectations.expect_creations(key, n)
        errors: list[Exception] = []
        created = 0

        async def one(index: int | None) -> bool:
            pod = self._pod_for(ctx, index)
            try:
                out = await self.pod_client.create(pod, meta.namespace(job))
            except StatusError as e:
                self.expectations.creation_observed(key)
                if namespace_terminating(e):
                    return False
                self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {e.message}")
                errors.append(e)
                return False
            self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {meta.name(out)}")
            return True

        pos, batch = 0, 1
        while pos < n:
            chunk = indexes[pos:pos + batch]
            results = await asyncio.gather(*(one(ix) for ix in chunk))
            created += sum(1 for r in results if r)
            pos += len(chunk)
            if errors:
                for _ in range(n - pos):
                    self.expectations.creation_observed(key)  # skipped: never observed
                break
            batch = min(2 * batch, n - pos)
        return active + created, (errors[0] if errors else None)

    # -- status tracking -----------------------------------------------------------------
    async def _track(self, ctx: _Ctx, key: str, needs_flush: bool) -> None:
        """trackJobStatusAndRemoveFinalizers."""
        job = ctx.job
        status = job["status"]
        indexed = _is_indexed(job)
        uncounted = status["uncountedTerminatedPods"]
        unc_succ: list[str] = list(uncounted.get("succeeded") or [])
        unc_fail: list[str] = list(uncounted.get("failed") or [])
        pods = sorted(ctx.pods, key=ju.completion_index) if indexed else ctx.pods
        with_finalizer = {meta.uid(p) for p in pods
                          if ju.has_tracking_finalizer(p) and meta.uid(p) not in ctx.expected_rm_finalizers}
        if self._clean_uncounted(status, with_finalizer):
            needs_flush = True
            unc_succ = list(status["uncountedTerminatedPods"].get("succeeded") or [])
            unc_fail = list(status["uncountedTerminatedPods"].get("failed") or [])
        policy = _spec(job).get("podFailurePolicy")
        to_release: list[Obj] = []
        new_indexes: list[int] = []
        reached_max = False
        finished_as_failure = (ctx.finished_condition is not None
                               and ctx.finished_condition.get("type") != "SuccessCriteriaMet")
        for pod in pods:
            uid = meta.uid(pod)
            if not ju.has_tracking_finalizer(pod) or uid in ctx.expected_rm_finalizers:
                continue
            failed = ju.is_pod_failed(pod, job)
            if not self._can_remove_finalizer(ctx, pod, failed):
                continue
            to_release.append(pod)
            if ju.phase(pod) == "Succeeded" and uid not in ctx.uncounted_failed:
                if indexed:
                    ix = ju.completion_index(pod)
                    if 0 <= ix < _completions(job) and ix not in ctx.prev_succeeded_indexes:
                        new_indexes.append(ix)
                        needs_flush = True
                elif uid not in ctx.uncounted_succeeded:
                    unc_succ.append(uid)
                    needs_flush = True
            elif failed or finished_as_failure:
                ix = ju.completion_index(pod)
                if (uid not in ctx.uncounted_failed and (not indexed or 0 <= ix < _completions(job))
                        and ju.match_pod_failure_policy(policy, pod).count_failed):
                    unc_fail.append(uid)
                    needs_flush = True
            if len(new_indexes) + len(unc_succ) + len(unc_fail) >= ju.MAX_UNCOUNTED_PODS:
                reached_max = True
                break
        status["uncountedTerminatedPods"] = {k: v for k, v in (("succeeded", unc_succ), ("failed", unc_fail)) if v}
        if indexed:
            ctx.succeeded_indexes = sorted(set(ctx.succeeded_indexes) | set(new_indexes))
            text = ju.format_indexes(ctx.succeeded_indexes)
            if text != (status.get("completedIndexes") or ""):
                needs_flush = True
            status["completedIndexes"] = text
            status["succeeded"] = len(ctx.succeeded_indexes)
            if ctx.failed_indexes is not None:
                ftext = ju.format_indexes(ctx.failed_indexes)
                if status.get("failedIndexes") != ftext:
                    status["failedIndexes"] = ftext
                    needs_flush = True
        now = self.now()
        fc = ctx.finished_condition
        if fc is not None and fc.get("type") == "FailureTarget":
            status.setdefault("conditions", []).append(fc)
            needs_flush = True
            ctx.finished_condition = ju.new_condition("Failed", "True", fc.get("reason", ""), fc.get("message", ""), now)
        elif fc is not None and fc.get("type") == "SuccessCriteriaMet":
            if not ju.has_true_condition(status, "SuccessCriteriaMet"):
                status.setdefault("conditions", []).append(fc)
                needs_flush = True
            ctx.finished_condition = ju.new_condition("Complete", "True", fc.get("reason", ""), fc.get("message", ""),
                                                      now)
        needs_flush = await self._flush_and_release(ctx, key, to_release, with_finalizer, needs_flush)
        finished = not reached_max and self._enact_finished(ctx, now)
        if finished or needs_flush:
            ctx.job = await self._write_status(ctx.job)
            if finished and ctx.finished_condition is not None:
                self._record_finished(ctx.job, ctx.finished_condition)

    def _can_remove_finalizer(self, ctx: _Ctx, pod: Obj, failed: bool) -> bool:
        if meta.is_deleting(ctx.job) or ctx.finished_condition is not None or ju.phase(pod) == "Succeeded":
            return True
        if not failed:
            return False
        if _per_index(ctx.job):
            last = ctx.delayed_per_index.get(ju.completion_index(pod))
            if last is not None and meta.uid(last) == meta.uid(pod):
                return False  # kept until its replacement carries the failure count
        return True

    @staticmethod
    def _clean_uncounted(status: Obj, with_finalizer: set[str]) -> bool:
        """Move UIDs whose finalizer is gone from uncountedTerminatedPods into the counters."""
        unc = status.get("uncountedTerminatedPods") or {}
        changed = False
        for lst, counter in (("succeeded", "succeeded"), ("failed", "failed")):
            uids = list(unc.get(lst) or [])
            keep = [u for u in uids if u in with_finalizer]
            if len(keep) != len(uids):
                changed = True
                status[counter] = int(status.get(counter) or 0) + len(uids) - len(keep)
                unc[lst] = keep
        status["uncountedTerminatedPods"] = {k: v for k, v in unc.items() if v}
        return changed

    async def _flush_and_release(self, ctx: _Ctx, key: str, to_release: list[Obj], with_finalizer: set[str],
                                 needs_flush: bool) -> bool:
        """Write the uncounted UIDs, then remove finalizers, then count what was released."""
        if needs_flush:
            ctx.job = await self._write_status(ctx.job)
            self.backoff[key] = ctx.backoff
            needs_flush = False
        rm_error: Exception | None = None
        if to_release:
            expected = self.finalizer_expectations.setdefault(key, set())
            expected.update(meta.uid(p) for p in to_release)

            async def one(pod: Obj) -> Exception | None:
                try:
                    await self.pod_client.patch(meta.name(pod), _REMOVE_FINALIZER, meta.namespace(pod),
                                                patch_type="strategic")
                except NotFound:
                    pass
                except StatusError as e:
                    expected.discard(meta.uid(pod))
                    return e
                with_finalizer.discard(meta.uid(pod))
                return None
            errors = [e for e in await asyncio.gather(*(one(p) for p in to_release)) if e is not None]
            rm_error = errors[0] if errors else None
        if self._clean_uncounted(ctx.job["status"], with_finalizer):
            needs_flush = True
        if rm_error is not None:
            if needs_flush:
                ctx.job = await self._write_status(ctx.job)
            raise rm_error
        return needs_flush

    def _enact_finished(self, ctx: _Ctx, now: _dt.datetime) -> bool:
        fc = ctx.finished_condition
        if fc is None:
            return False
        status = ctx.job["status"]
        if (status.get("uncountedTerminatedPods") or {}).get("succeeded") or \
                (status.get("uncountedTerminatedPods") or {}).get("failed"):
            return False
        if ctx.terminating > 0:
            return False
        ju.ensure_condition(status, fc["type"], fc["status"], fc.get("reason", ""), fc.get("message", ""), now)
        if fc["type"] == "Complete":
            status["completionTime"] = meta.rfc3339(now)
        return True

    def _record_finished(self, job: Obj, cond: Obj) -> None:
        if cond["type"] == "Complete":
            completions = _spec(job).get("completions")
            if completions is not None and int((job.get("status") or {}).get("succeeded") or 0) > int(completions):
                self.recorder.event(job, "Warning", "TooManySucceededPods",
                                    "Too many succeeded pods running after completion count reached")
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", cond.get("reason", ""), cond.get("message", ""))

    async def _write_status(self, job: Obj) -> Obj:
        """PUT /status with Go's omitempty shape for the counters."""
        body = dict(job)
        st = dict(job.get("status") or {})
        for f in ("active", "succeeded", "failed"):
            if not st.get(f):
                st.pop(f, None)
        if not st.get("completedIndexes"):
            st.pop("completedIndexes", None)
        if not st.get("conditions"):
            st.pop("conditions", None)
        body["status"] = st
        try:
            out = await self.job_client.update_status(body)
        except Invalid:
            log.warning("job %s: status rejected", meta.key(job))
            raise
        # Keep working on our own view (the counters as plain ints) with the new version.
        job["metadata"] = out["metadata"]
        return job
