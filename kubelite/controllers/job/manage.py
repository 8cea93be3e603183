"""Pod management of one Job sync (upstream manageJob, deleteJobPods, deleteActivePods).

- suspended: delete every active pod (finalizer first: a suspension is not a failure);
- more active pods than wanted: delete the surplus, duplicate or out-of-range indexes
  first, then the least advanced pods; deletions and creations never mix in one sync;
- fewer: wait out the back-off (global, or per index with backoffLimitPerIndex), then
  create in slow-start batches of 1, 2, 4 … (at most 500 per sync), one pod per pending
  completion index for Indexed Jobs, each carrying the tracking finalizer.

Wanted active pods: without completions, parallelism until the first success (then
whatever runs); with completions, min(completions - succeeded, parallelism).
"""
from __future__ import annotations

import asyncio
import copy
import datetime as _dt
from typing import Any

from kubelite.api import meta
from kubelite.client.errors import NotFound, StatusError
from kubelite.controllers.job import context as jc
from kubelite.controllers.job import util as ju
from kubelite.controllers.job.context import JobControllerContext, SyncContext
from kubelite.controllers.podcontrol import (
    is_pod_ready,
    namespace_terminating,
    pod_from_template,
    pod_key,
    rank_for_deletion,
)

Obj = dict[str, Any]

API_VERSION = "batch/v1"
KIND = "Job"
REMOVE_FINALIZER = {"metadata": {"$deleteFromPrimitiveList/finalizers": [ju.TRACKING_FINALIZER]}}


async def delete_active(c: JobControllerContext, job: Obj, pods: list[Obj]) -> tuple[int, int, Exception | None]:
    """Delete pods keeping their finalizers (the tracking step counts them)."""
    async def one(pod: Obj) -> Exception | None:
        try:
            await c.pod_client.delete(meta.name(pod), meta.namespace(pod))
            c.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.name(pod)}")
        except NotFound:
            pass
        except StatusError as e:
            c.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            return e
        return None
    results = await asyncio.gather(*(one(p) for p in pods))
    errors = [e for e in results if e is not None]
    ok = [p for p, e in zip(pods, results, strict=True) if e is None]
    return sum(1 for p in ok if is_pod_ready(p)), len(ok), (errors[0] if errors else None)


async def delete_job_pods(c: JobControllerContext, job: Obj, key: str, pods: list[Obj]) -> tuple[int, int, Exception | None]:
    """Delete pods the Job no longer wants, finalizer first (they are not counted as failed)."""
    c.expectations.expect_deletions(key, [pod_key(p) for p in pods])

    async def one(pod: Obj) -> Exception | None:
        try:
            if ju.has_tracking_finalizer(pod):
                await c.pod_client.patch(meta.name(pod), REMOVE_FINALIZER, meta.namespace(pod),
                                            patch_type="strategic")
            await c.pod_client.delete(meta.name(pod), meta.namespace(pod))
            c.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.name(pod)}")
        except NotFound:
            c.expectations.deletion_observed(key, pod_key(pod))
        except StatusError as e:
            c.expectations.deletion_observed(key, pod_key(pod))
            c.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            return e
        return None
    results = await asyncio.gather(*(one(p) for p in pods))
    errors = [e for e in results if e is not None]
    ok = [p for p, e in zip(pods, results, strict=True) if e is None]
    return sum(1 for p in ok if is_pod_ready(p)), len(ok), (errors[0] if errors else None)


def pods_for_removal(job: Obj, pods: list[Obj], at_least: int) -> list[Obj]:
    """Duplicate or out-of-range indexes first, then the least advanced pods."""
    rm: list[Obj] = []
    left = pods
    if jc.is_indexed(job):
        completions = jc.completions(job)
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


async def manage(c: JobControllerContext, ctx: SyncContext, key: str, now: _dt.datetime) -> tuple[int, Exception | None]:
    """manageJob: the number of active pods after creating or deleting toward the target."""
    job = ctx.job
    spec = jc.spec(job)
    active = len(ctx.active_pods)
    parallelism = int(spec.get("parallelism") or 0)
    if jc.suspended(job):
        victims = pods_for_removal(job, ctx.active_pods, active)
        ready, removed, err = await delete_job_pods(c, job, key, victims)
        ctx.terminating += removed
        ctx.ready -= ready
        return active - removed, err
    if spec.get("completions") is None:
        want = active if ctx.succeeded > 0 else parallelism
    else:
        want = max(0, min(int(spec["completions"]) - ctx.succeeded, parallelism))
    victims = pods_for_removal(job, ctx.active_pods, max(0, active - want))
    victims = victims[:ju.MAX_POD_CREATE_DELETE_PER_SYNC]
    if victims:
        ready, removed, err = await delete_job_pods(c, job, key, victims)
        ctx.terminating += removed
        ctx.ready -= ready
        return active - removed, err
    terminating = ctx.terminating if ju.only_replace_failed_pods(job) else 0
    diff = want - terminating - active
    if diff <= 0:
        return active, None
    if not jc.per_index(job):
        wait = ju.remaining_backoff(ctx.backoff.failures_after_last_success, ctx.backoff.last_failure_time, now,
                                    c.backoff_base, c.backoff_cap)
        if wait > 0:
            # Upstream reports 0 active here; the pods that do run are the truer count.
            c.queue.add_after(key, wait)
            return active, None
    diff = min(diff, ju.MAX_POD_CREATE_DELETE_PER_SYNC)
    indexes: list[int | None] = [None] * diff
    if jc.is_indexed(job):
        excluded = set(ctx.succeeded_indexes) | {ju.completion_index(p) for p in ctx.active_pods}
        excluded |= set(ctx.failed_indexes or [])
        if ju.only_replace_failed_pods(job):
            excluded |= {ju.completion_index(p) for p in ctx.pods if ju.is_terminating(p)}
        todo = ju.first_pending_indexes(diff, jc.completions(job), excluded=excluded)
        if jc.per_index(job):
            todo, wait = indexes_ready_to_create(c, ctx, todo, now)
            if wait > 0:
                c.queue.add_after(key, wait)
                return active, None
        indexes = list(todo)
    return await create_pods(c, ctx, key, active, indexes)


def indexes_ready_to_create(c: JobControllerContext, ctx: SyncContext, todo: list[int],
                            now: _dt.datetime) -> tuple[list[int], float]:
    """The pending indexes whose own back-off is over; else none and the shortest wait."""
    ready: list[int] = []
    waits: list[float] = []
    for ix in todo:
        last = ctx.delayed_per_index.get(ix)
        wait = 0.0 if last is None else ju.remaining_backoff(
            ju.index_absolute_failure_count(last) + 1, ju.finished_time(last), now, c.backoff_base,
            c.backoff_cap)
        if wait == 0:
            ready.append(ix)
        else:
            waits.append(wait)
    if ready:
        return ready, 0.0
    return [], min(waits, default=0.0)


def pod_for(c: JobControllerContext, ctx: SyncContext, index: int | None) -> Obj:
    """A new pod from the template: tracking finalizer, controllerRef, and for an index its
    annotation, label, hostname, JOB_COMPLETION_INDEX and generateName ``<job>-<index>-``."""
    job = ctx.job
    template = copy.deepcopy(jc.spec(job).get("template") or {})
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
        for container in (pspec.get("initContainers") or []) + (pspec.get("containers") or []):
            env = container.setdefault("env", [])
            if not any(e.get("name") == ju.COMPLETION_INDEX_ENV for e in env):
                env.append(env_ref)
        if jc.per_index(job):
            index_failure_annotations(ctx, tmd, index)
    pod = pod_from_template(template, job, meta.new_controller_ref(job, API_VERSION, KIND))
    if index is not None:
        pod["metadata"]["generateName"] = f"{meta.name(job)}-{index}-"
    return pod


def index_failure_annotations(ctx: SyncContext, tmd: Obj, index: int) -> None:
    """Carry the index's failure count over from its last failed pod to the replacement."""
    last = ctx.delayed_per_index.get(index)
    counted = ignored = 0
    if last is not None:
        counted = ju.index_failure_count(last)
        ignored = ju.index_absolute_failure_count(last) - counted
        if ju.match_pod_failure_policy(jc.spec(ctx.job).get("podFailurePolicy"), last).count_failed:
            counted += 1
        else:
            ignored += 1
    ann = tmd.setdefault("annotations", {})
    ann[ju.INDEX_FAILURE_COUNT] = str(counted)
    if ignored > 0:
        ann[ju.INDEX_IGNORED_FAILURE_COUNT] = str(ignored)


async def create_pods(c: JobControllerContext, ctx: SyncContext, key: str, active: int,
                      indexes: list[int | None]) -> tuple[int, Exception | None]:
    """Create one pod per entry of ``indexes`` in slow-start batches (1, 2, 4 …)."""
    job = ctx.job
    n = len(indexes)
    c.expectations.expect_creations(key, n)
    errors: list[Exception] = []
    created = 0

    async def one(index: int | None) -> bool:
        pod = pod_for(c, ctx, index)
        try:
            out = await c.pod_client.create(pod, meta.namespace(job))
        except StatusError as e:
            c.expectations.creation_observed(key)
            if namespace_terminating(e):
                return False
            c.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {e.message}")
            errors.append(e)
            return False
        c.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {meta.name(out)}")
        return True

    pos, batch = 0, 1
    while pos < n:
        chunk = indexes[pos:pos + batch]
        results = await asyncio.gather(*(one(ix) for ix in chunk))
        created += sum(1 for r in results if r)
        pos += len(chunk)
        if errors:
            for _ in range(n - pos):
                c.expectations.creation_observed(key)  # skipped: never observed
            break
        batch = min(2 * batch, n - pos)
    return active + created, (errors[0] if errors else None)
