"""Status tracking of one Job sync (upstream trackJobStatusAndRemoveFinalizers).

A finished pod is counted exactly once, through its tracking finalizer: its UID is
first written to ``status.uncountedTerminatedPods`` (so a crash cannot lose it), then
its finalizer is removed, then it moves from the uncounted list into ``succeeded`` /
``failed`` (Indexed Jobs: into ``completedIndexes``).  At most 500 UIDs go through per
sync.  When nothing is uncounted and no pod is terminating, the interim condition
becomes final: SuccessCriteriaMet → Complete (with completionTime), FailureTarget →
Failed, and the Completed event or a Warning with the failure reason is recorded.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from typing import Any

from kubelite.api import meta
from kubelite.client.errors import Invalid, NotFound, StatusError
from kubelite.controllers.job import context as jc
from kubelite.controllers.job import util as ju
from kubelite.controllers.job.context import JobControllerContext, SyncContext
from kubelite.controllers.job.manage import REMOVE_FINALIZER

log = logging.getLogger(__name__)
Obj = dict[str, Any]


async def track(c: JobControllerContext, ctx: SyncContext, key: str, needs_flush: bool) -> None:
    """trackJobStatusAndRemoveFinalizers."""
    job = ctx.job
    status = job["status"]
    indexed = jc.is_indexed(job)
    uncounted = status["uncountedTerminatedPods"]
    unc_succ: list[str] = list(uncounted.get("succeeded") or [])
    unc_fail: list[str] = list(uncounted.get("failed") or [])
    pods = sorted(ctx.pods, key=ju.completion_index) if indexed else ctx.pods
    with_finalizer = {meta.uid(p) for p in pods
                      if ju.has_tracking_finalizer(p) and meta.uid(p) not in ctx.expected_rm_finalizers}
    if clean_uncounted(status, with_finalizer):
        needs_flush = True
        unc_succ = list(status["uncountedTerminatedPods"].get("succeeded") or [])
        unc_fail = list(status["uncountedTerminatedPods"].get("failed") or [])
    policy = jc.spec(job).get("podFailurePolicy")
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
        if not can_remove_finalizer(ctx, pod, failed):
            continue
        to_release.append(pod)
        if ju.phase(pod) == "Succeeded" and uid not in ctx.uncounted_failed:
            if indexed:
                ix = ju.completion_index(pod)
                if 0 <= ix < jc.completions(job) and ix not in ctx.prev_succeeded_indexes:
                    new_indexes.append(ix)
                    needs_flush = True
            elif uid not in ctx.uncounted_succeeded:
                unc_succ.append(uid)
                needs_flush = True
        elif failed or finished_as_failure:
            ix = ju.completion_index(pod)
            if (uid not in ctx.uncounted_failed and (not indexed or 0 <= ix < jc.completions(job))
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
    now = c.now()
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
    needs_flush = await flush_and_release(c, ctx, key, to_release, with_finalizer, needs_flush)
    finished = not reached_max and enact_finished(ctx, now)
    if finished or needs_flush:
        ctx.job = await write_status(c, ctx.job)
        if finished and ctx.finished_condition is not None:
            record_finished(c, ctx.job, ctx.finished_condition)


def can_remove_finalizer(ctx: SyncContext, pod: Obj, failed: bool) -> bool:
    """A pod may be counted now: the Job ends or is deleted, the pod succeeded, or it failed
    (unless it must wait to pass its index's failure count to a replacement)."""
    if meta.is_deleting(ctx.job) or ctx.finished_condition is not None or ju.phase(pod) == "Succeeded":
        return True
    if not failed:
        return False
    if jc.per_index(ctx.job):
        last = ctx.delayed_per_index.get(ju.completion_index(pod))
        if last is not None and meta.uid(last) == meta.uid(pod):
            return False  # kept until its replacement carries the failure count
    return True


def clean_uncounted(status: Obj, with_finalizer: set[str]) -> bool:
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


async def flush_and_release(c: JobControllerContext, ctx: SyncContext, key: str, to_release: list[Obj], with_finalizer: set[str],
                             needs_flush: bool) -> bool:
    """Write the uncounted UIDs, then remove finalizers, then count what was released."""
    if needs_flush:
        ctx.job = await write_status(c, ctx.job)
        c.backoff[key] = ctx.backoff
        needs_flush = False
    rm_error: Exception | None = None
    if to_release:
        expected = c.finalizer_expectations.setdefault(key, set())
        expected.update(meta.uid(p) for p in to_release)

        async def one(pod: Obj) -> Exception | None:
            try:
                await c.pod_client.patch(meta.name(pod), REMOVE_FINALIZER, meta.namespace(pod),
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
    if clean_uncounted(ctx.job["status"], with_finalizer):
        needs_flush = True
    if rm_error is not None:
        if needs_flush:
            ctx.job = await write_status(c, ctx.job)
        raise rm_error
    return needs_flush


def enact_finished(ctx: SyncContext, now: _dt.datetime) -> bool:
    """Turn the interim condition into the final one once nothing is uncounted or terminating."""
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


def record_finished(c: JobControllerContext, job: Obj, cond: Obj) -> None:
    """Completed (and TooManySucceededPods), or a Warning with the failure's reason and message."""
    if cond["type"] == "Complete":
        completions = jc.spec(job).get("completions")
        if completions is not None and int((job.get("status") or {}).get("succeeded") or 0) > int(completions):
            c.recorder.event(job, "Warning", "TooManySucceededPods",
                                "Too many succeeded pods running after completion count reached")
        c.recorder.event(job, "Normal", "Completed", "Job completed")
    else:
        c.recorder.event(job, "Warning", cond.get("reason", ""), cond.get("message", ""))


async def write_status(c: JobControllerContext, job: Obj) -> Obj:
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
        out = await c.job_client.update_status(body)
    except Invalid:
        log.warning("job %s: status rejected", meta.key(job))
        raise
    # Keep working on our own view (the counters as plain ints) with the new version.
    job["metadata"] = out["metadata"]
    return job
