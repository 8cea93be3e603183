"""The CronJob controller: start Jobs on schedule, as upstream's cronjob_controllerv2.go.

Informers on CronJobs and Jobs; Job events enqueue the owning CronJob.  One
``sync(key)``:

1. reconcile ``status.active`` with the CronJob's Jobs: drop finished ones
   (SawCompletedJob) and vanished ones (MissingJob), note the latest successful
   completion (``lastSuccessfulTime``), warn about running Jobs it does not list
   (UnexpectedJob);
2. unless deleted or suspended, find the most recent start time not yet acted on
   (``api.cronschedule``; more than 100 missed ones only warn, TooManyMissedTimes);
   skip it if it is older than startingDeadlineSeconds (MissSchedule), already
   started, or a Job is running under Forbid (JobAlreadyActive); under Replace delete
   the running Jobs first;
3. create the Job ``<cronjob>-<minutes since the epoch>`` from the template (owner
   reference, the scheduled-timestamp annotation), add it to ``active``, set
   ``lastScheduleTime``, write status, and requeue for 100 ms after the next start;
4. delete the oldest finished Jobs beyond successful/failedJobsHistoryLimit.

The clock is injectable (``now``) so tests drive schedules without waiting.
"""
from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import logging
from collections.abc import Callable
from typing import Any

from kubelite.api import meta
from kubelite.api.cronschedule import (
    Missed,
    ScheduleError,
    load_zone,
    local_zone,
    most_recent_schedule_time,
    next_schedule_delay,
    parse_schedule,
)
from kubelite.api.resources import CRONJOBS, JOBS
from kubelite.client.errors import AlreadyExists, NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers.job.util import find_condition
from kubelite.controllers.podcontrol import namespace_terminating

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "CronJob"
API_VERSION = "batch/v1"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
_UTC = _dt.UTC


def job_name(cj: Obj, scheduled: _dt.datetime) -> str:
    """``<cronjob>-<scheduled time in minutes since the epoch>``: one name per start time."""
    return f"{meta.name(cj)}-{int(scheduled.timestamp()) // 60}"


def finished_type(job: Obj) -> str | None:
    """"Complete" or "Failed" when the Job has finished, else None."""
    for t in ("Complete", "Failed"):
        c = find_condition(job.get("status") or {}, t)
        if c is not None and c.get("status") == "True":
            return t
    return None


def job_from_template(cj: Obj, scheduled: _dt.datetime) -> Obj:
    """getJobFromTemplate2: the template's labels, annotations and spec, a deterministic name."""
    jt = (cj.get("spec") or {}).get("jobTemplate") or {}
    md = jt.get("metadata") or {}
    annotations = dict(md.get("annotations") or {})
    # The scheduled-timestamp annotation is in the CronJob's timeZone, UTC without one.
    local = scheduled.astimezone(load_zone((cj.get("spec") or {}).get("timeZone")) or _UTC)
    annotations[SCHEDULED_TIMESTAMP] = local.isoformat().replace("+00:00", "Z") if local.utcoffset() == \
        _dt.timedelta(0) else local.isoformat()
    job: Obj = {"apiVersion": API_VERSION, "kind": "Job",
                "metadata": {"name": job_name(cj, scheduled), "annotations": annotations,
                             "ownerReferences": [meta.new_controller_ref(cj, API_VERSION, KIND)]},
                "spec": copy.deepcopy(jt.get("spec") or {})}
    if md.get("labels"):
        job["metadata"]["labels"] = dict(md["labels"])
    return job


def _start_key(job: Obj) -> tuple[int, _dt.datetime, str]:
    start = meta.parse_time((job.get("status") or {}).get("startTime"))
    if start is None:
        return (1, _dt.datetime.max.replace(tzinfo=_UTC), meta.name(job))
    return (0, start, meta.name(job))


def jobs_to_remove(jobs: list[Obj], limit: int) -> list[Obj]:
    """The oldest (by start time, then name) jobs beyond ``limit``."""
    n = len(jobs) - limit
    if n <= 0:
        return []
    return sorted(jobs, key=_start_key)[:n]


class CronJobController:
    """Starts Jobs for CronJobs on schedule and keeps their history short."""

    name = "cronjob"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 recorder: Recorder | None = None, now: Callable[[], _dt.datetime] = meta.now,
                 zone: _dt.tzinfo | None = None):
        self.cj_client = client.resource(CRONJOBS)
        # Where a CronJob without timeZone is read: this machine's zone, as upstream.
        self.zone = zone or local_zone()
        self.job_client = client.resource(JOBS)
        self.cj_informer = factory.informer(CRONJOBS)
        self.job_informer = factory.informer(JOBS)
        self.recorder: Recorder = recorder or EventRecorder(client, "cronjob-controller")
        self.now = now
        self.workers = workers
        self.queue = WorkQueue("cronjob")
        self.cj_informer.add_handler(self._add_cj, self._update_cj, self._add_cj)
        self.job_informer.add_handler(self._job_event, lambda _o, cur: self._job_event(cur), self._job_event)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, wait for their first list, run workers until ``stop``."""
        for inf in (self.cj_informer, self.job_informer):
            inf.start()
        await asyncio.gather(self.cj_informer.wait_synced(), self.job_informer.wait_synced())
        await process_until(self.queue, self.sync, stop, self.workers)

    def _add_cj(self, cj: Obj) -> None:
        self.queue.add(meta.key(cj))

    def _update_cj(self, old: Obj, cur: Obj) -> None:
        os_, cs = old.get("spec") or {}, cur.get("spec") or {}
        if os_.get("schedule") != cs.get("schedule") or os_.get("timeZone") != cs.get("timeZone"):
            # A new schedule: look again at its next start (and now, for the status).
            try:
                sched, zone = parse_schedule(cs.get("schedule") or ""), load_zone(cs.get("timeZone"), self.zone)
            except ScheduleError:
                sched, zone = None, None
            if sched is not None and zone is not None:
                self.queue.add_after(meta.key(cur), self._delay(cur, sched, zone))
        self.queue.add(meta.key(cur))

    def _job_event(self, job: Obj) -> None:
        ref = meta.controller_ref(job)
        if ref is None or ref.get("kind") != KIND:
            return
        cj = self.cj_informer.get(f"{meta.namespace(job)}/{ref.get('name')}")
        if cj is not None and meta.uid(cj) == ref.get("uid"):
            self.queue.add(meta.key(cj))

    def _delay(self, cj: Obj, sched: Any, zone: _dt.tzinfo) -> float:
        created = meta.parse_time(cj["metadata"].get("creationTimestamp")) or self.now()
        last = meta.parse_time((cj.get("status") or {}).get("lastScheduleTime"))
        return max(0.0, next_schedule_delay(created=created, last_scheduled=last, now=self.now(), schedule=sched,
                                            zone=zone))

    # -- sync ----------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """Reconcile one CronJob: its active list, a due start, its history."""
        cached = self.cj_informer.get(key)
        if cached is None:
            return
        cj = copy.deepcopy(cached)
        cj.setdefault("kind", KIND)
        cj.setdefault("apiVersion", API_VERSION)
        uid = meta.uid(cj)
        jobs = [j for j in self.job_informer.list(meta.namespace(cj))
                if (meta.controller_ref(j) or {}).get("uid") == uid]
        before = copy.deepcopy(cj.get("status") or {})
        requeue: float | None = None
        error: Exception | None = None
        try:
            cj, requeue = await self._sync_cronjob(cj, jobs)
        except StatusError as e:
            error = e
        if (cj.get("status") or {}) != before:
            cj = await self._write_status(cj)
        if error is None and await self._cleanup_finished(cj, jobs):
            cj = await self._write_status(cj)
        if requeue is not None:
            self.queue.add_after(key, requeue)
        if error is not None:
            raise error

    async def _sync_cronjob(self, cj: Obj, jobs: list[Obj]) -> tuple[Obj, float | None]:
        status = cj.setdefault("status", {})
        children = {meta.uid(j) for j in jobs}
        for j in jobs:
            in_active = any(r.get("uid") == meta.uid(j) for r in status.get("active") or [])
            done = finished_type(j)
            if not in_active and done is None:
                fresh = await self.cj_client.get(meta.name(cj), meta.namespace(cj))
                if any(r.get("uid") == meta.uid(j) for r in (fresh.get("status") or {}).get("active") or []):
                    continue
                self.recorder.event(cj, "Warning", "UnexpectedJob",
                                    f"Saw a job that the controller did not create or forgot: {meta.name(j)}")
            elif in_active and done is not None:
                self._drop_active(cj, meta.uid(j))
                self.recorder.event(cj, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {meta.name(j)}, condition: {done}")
            if done == "Complete":
                completed = meta.parse_time((j.get("status") or {}).get("completionTime"))
                last = meta.parse_time(status.get("lastSuccessfulTime"))
                if completed is not None and (last is None or last < completed):
                    status["lastSuccessfulTime"] = meta.rfc3339(completed)
        for ref in list(status.get("active") or []):
            if ref.get("uid") in children:
                continue
            try:
                await self.job_client.get(ref.get("name", ""), ref.get("namespace") or meta.namespace(cj))
            except NotFound:
                self.recorder.event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                self._drop_active(cj, ref.get("uid", ""))
        if meta.is_deleting(cj):
            return cj, None
        spec = cj.get("spec") or {}
        zone = load_zone(spec.get("timeZone"), self.zone)
        if zone is None:
            self.recorder.event(cj, "Warning", "UnknownTimeZone",
                                f'invalid timeZone: "{spec.get("timeZone")}": unknown time zone {spec.get("timeZone")}')
            return cj, None
        if spec.get("suspend"):
            return cj, None
        try:
            sched = parse_schedule(spec.get("schedule") or "")
        except ScheduleError as e:
            self.recorder.event(cj, "Warning", "UnparseableSchedule",
                                f'unparseable schedule: "{spec.get("schedule")}" : {e}')
            return cj, None
        now = self.now()
        created = meta.parse_time(cj["metadata"].get("creationTimestamp")) or now
        last = meta.parse_time(status.get("lastScheduleTime"))
        try:
            _, scheduled, missed = most_recent_schedule_time(
                created=created, last_scheduled=last, now=now, schedule=sched, zone=zone,
                starting_deadline=spec.get("startingDeadlineSeconds"))
        except ScheduleError as e:
            self.recorder.event(cj, "Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {e}")
            return cj, None
        if scheduled is not None and missed is Missed.MANY:
            self.recorder.event(cj, "Warning", "TooManyMissedTimes",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                "or check clock skew")
        delay = self._delay(cj, sched, zone)
        if scheduled is None:
            return cj, delay
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + _dt.timedelta(seconds=int(deadline)) < now:
            self.recorder.event(cj, "Warning", "MissSchedule",
                                "Missed scheduled time to start a job: " + _rfc1123z(scheduled))
            return cj, delay
        name = job_name(cj, scheduled)
        if any(r.get("name") == name for r in status.get("active") or []) or last == scheduled:
            return cj, delay
        if spec.get("concurrencyPolicy") == "Forbid" and status.get("active"):
            self.recorder.event(cj, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return cj, delay
        if spec.get("concurrencyPolicy") == "Replace":
            for ref in list(status.get("active") or []):
                await self._delete_job(cj, ref.get("name", ""), ref.get("uid", ""))
        job = job_from_template(cj, scheduled)
        try:
            out = await self.job_client.create(job, meta.namespace(cj))
            self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {meta.name(out)}")
        except AlreadyExists:
            out = await self.job_client.get(name, meta.namespace(cj))
            if (meta.controller_ref(out) or {}).get("uid") != meta.uid(cj):
                return cj, None
            if any(r.get("uid") == meta.uid(out) for r in status.get("active") or []):
                return cj, None
        except StatusError as e:
            if not namespace_terminating(e):
                self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {e.message}")
            raise
        status.setdefault("active", []).append(
            {"kind": "Job", "namespace": meta.namespace(out), "name": meta.name(out), "uid": meta.uid(out),
             "apiVersion": API_VERSION, "resourceVersion": meta.resource_version(out)})
        status["lastScheduleTime"] = meta.rfc3339(scheduled)
        return cj, self._delay(cj, sched, zone)

    @staticmethod
    def _drop_active(cj: Obj, uid: str) -> None:
        status = cj.setdefault("status", {})
        active = [r for r in status.get("active") or [] if r.get("uid") != uid]
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    async def _delete_job(self, cj: Obj, name: str, uid: str) -> bool:
        """Delete one Job (background propagation); SuccessfulDelete / FailedDelete."""
        try:
            await self.job_client.delete(name, meta.namespace(cj), propagation_policy="Background")
        except NotFound:
            pass
        except StatusError as e:
            self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {e.message}")
            return False
        self._drop_active(cj, uid)
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    async def _cleanup_finished(self, cj: Obj, jobs: list[Obj]) -> bool:
        """Delete the oldest finished Jobs beyond the history limits; True if status changed."""
        spec = cj.get("spec") or {}
        changed = False
        for kind, limit_field in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(limit_field)
            if limit is None:
                continue
            done = [j for j in jobs if finished_type(j) == kind and not meta.is_deleting(j)]
            for j in jobs_to_remove(done, int(limit)):
                before = len((cj.get("status") or {}).get("active") or [])
                await self._delete_job(cj, meta.name(j), meta.uid(j))
                changed = changed or before != len((cj.get("status") or {}).get("active") or [])
        return changed

    async def _write_status(self, cj: Obj) -> Obj:
        out = await self.cj_client.update_status(cj)
        cj["metadata"] = out["metadata"]
        return cj


def _rfc1123z(t: _dt.datetime) -> str:
    return t.astimezone(_UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
