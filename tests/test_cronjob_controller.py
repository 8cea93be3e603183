"""CronJob controller against tests/fakeapi.py with a controlled clock: schedules start
Jobs (named after the start minute), concurrency policies, startingDeadlineSeconds,
suspend, history limits — upstream's cronjob_controllerv2 cases, minutes in microseconds."""
from __future__ import annotations

import datetime as dt
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import CRONJOBS, JOBS
from kubelite.controllers.cronjob import SCHEDULED_TIMESTAMP, CronJobController, jobs_to_remove
from tests.fakeapi import Driver, FakeAPI, FakeClock, RecordingRecorder

Obj = dict[str, Any]
START = dt.datetime(2026, 1, 1, 10, 0, 30, tzinfo=dt.UTC)


def cronjob(name: str, schedule: str = "*/1 * * * *", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": schedule, "concurrencyPolicy": "Allow", "suspend": False,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"metadata": {"labels": {"team": "a"}},
                                     "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                                                    "containers": [{"name": "c", "image": "i"}]}}}},
                     **spec}}


class Env:
    def __init__(self) -> None:
        self.api = FakeAPI()
        self.api.clock = FakeClock(START)
        self.rec = RecordingRecorder()
        # Without a timeZone the controller reads schedules in its machine's zone: pin it.
        self.ctl = CronJobController(self.api, self.api, recorder=self.rec, now=self.api.clock, zone=dt.UTC)
        self.driver = Driver(self.ctl)

    def jobs(self) -> list[Obj]:
        return sorted(self.api.items("jobs", "default"), key=meta.name)

    def cj(self, name: str) -> Obj:
        return self.api.get_obj("cronjobs", "default", name)

    async def tick(self, seconds: float, name: str = "cj") -> None:
        """Let time pass, then sync as the delayed requeue would."""
        self.api.clock.advance(seconds)
        self.ctl.queue.add(f"default/{name}")
        await self.driver.settle()

    def finish(self, job: Obj, kind: str = "Complete") -> None:
        now = meta.rfc3339(self.api.clock())
        job["status"] = {"startTime": job["metadata"]["creationTimestamp"],
                         "conditions": [{"type": kind, "status": "True", "lastTransitionTime": now}]}
        if kind == "Complete":
            job["status"]["completionTime"] = now
        self.api.update(JOBS, job, "status")


async def test_cronjob_should_schedule_jobs_on_each_minute():
    env = Env()
    env.api.create(CRONJOBS, cronjob("cj"), "default")   # created at 10:00:31
    await env.driver.settle()
    assert env.jobs() == []
    await env.tick(30)                                   # 10:01:01 → the 10:01 start
    jobs = env.jobs()
    minute = int(dt.datetime(2026, 1, 1, 10, 1, tzinfo=dt.UTC).timestamp()) // 60
    assert [meta.name(j) for j in jobs] == [f"cj-{minute}"]
    job = jobs[0]
    assert meta.controller_ref(job)["kind"] == "CronJob"
    assert job["metadata"]["labels"] == {"team": "a"}
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2026-01-01T10:01:00Z"
    st = env.cj("cj")["status"]
    assert st["lastScheduleTime"] == "2026-01-01T10:01:00Z"
    assert [r["name"] for r in st["active"]] == [meta.name(job)]
    assert env.rec.messages("SuccessfulCreate") == [f"Created job {meta.name(job)}"]
    # The same minute again: nothing new.
    await env.tick(10)
    assert len(env.jobs()) == 1
    # Allow: the next minute starts another while the first still runs.
    await env.tick(60)
    assert len(env.jobs()) == 2
    assert len(env.cj("cj")["status"]["active"]) == 2


async def test_cronjob_schedules_in_its_time_zone():
    env = Env()
    # 05:01 in New York is 10:01 UTC in winter.
    env.api.create(CRONJOBS, cronjob("cj", "1 5 * * *", timeZone="America/New_York"), "default")
    await env.tick(31)
    jobs = env.jobs()
    assert len(jobs) == 1
    assert jobs[0]["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2026-01-01T05:01:00-05:00"


async def test_cronjob_forbid_concurrency_skips_while_a_job_runs():
    env = Env()
    env.api.create(CRONJOBS, cronjob("cj", concurrencyPolicy="Forbid"), "default")
    await env.tick(30)
    assert len(env.jobs()) == 1
    await env.tick(60)
    assert len(env.jobs()) == 1
    assert env.rec.messages("JobAlreadyActive") == [
        "Not starting job because prior execution is running and concurrency policy is Forbid"]
    # Once it finishes, the skipped 10:02 start (no startingDeadlineSeconds) goes ahead.
    first = env.jobs()[0]
    env.finish(first)
    finished_at = meta.rfc3339(env.api.clock())
    await env.driver.settle()
    jobs = env.jobs()
    assert len(jobs) == 2
    st = env.cj("cj")["status"]
    assert st["lastSuccessfulTime"] == finished_at
    assert st["lastScheduleTime"] == "2026-01-01T10:02:00Z"
    assert [r["name"] for r in st["active"]] == [meta.name(j) for j in jobs if meta.name(j) != meta.name(first)]
    assert env.rec.messages("SawCompletedJob") == [f"Saw completed job: {meta.name(first)}, condition: Complete"]


async def test_cronjob_replace_concurrency_deletes_the_running_job():
    env = Env()
    env.api.create(CRONJOBS, cronjob("cj", concurrencyPolicy="Replace"), "default")
    await env.tick(30)
    first = env.jobs()[0]
    await env.tick(60)
    jobs = env.jobs()
    assert len(jobs) == 1 and meta.name(jobs[0]) != meta.name(first)
    assert env.rec.messages("SuccessfulDelete") == [f"Deleted job {meta.name(first)}"]
    assert [r["name"] for r in env.cj("cj")["status"]["active"]] == [meta.name(jobs[0])]


async def test_cronjob_suspend_starts_nothing():
    env = Env()
    env.api.create(CRONJOBS, cronjob("cj", suspend=True), "default")
    await env.tick(600)
    assert env.jobs() == []
    cj = env.cj("cj")
    cj["spec"]["suspend"] = False
    env.api.update(CRONJOBS, cj)
    await env.driver.settle()
    # Resumed: only the most recent missed start runs, not all ten.
    assert len(env.jobs()) == 1


async def test_cronjob_starting_deadline_skips_late_starts():
    env = Env()
    env.api.create(CRONJOBS, cronjob("cj", "0 * * * *", startingDeadlineSeconds=10), "default")
    await env.tick(3600)          # 11:00:31: the 11:00 start is 31 s late, beyond 10 s
    assert env.jobs() == []
    await env.tick(3600 - 25)     # 11:59:66 → 12:00:06: within the deadline
    assert len(env.jobs()) == 1


async def test_cronjob_warns_about_too_many_missed_start_times():
    env = Env()
    env.api.create(CRONJOBS, cronjob("cj"), "default")
    await env.tick(200 * 60)
    assert env.rec.messages("TooManyMissedTimes") == [
        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"]
    assert len(env.jobs()) == 1   # still starts the most recent one


async def test_cronjob_keeps_history_limits():
    env = Env()
    env.api.create(CRONJOBS, cronjob("cj", successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1), "default")
    for i in range(5):
        await env.tick(60)
        newest = max(env.jobs(), key=lambda j: j["metadata"]["creationTimestamp"])
        env.finish(newest, "Failed" if i in (1, 3) else "Complete")
        await env.driver.settle()
    jobs = env.jobs()
    ok = [j for j in jobs if j["status"]["conditions"][0]["type"] == "Complete"]
    failed = [j for j in jobs if j["status"]["conditions"][0]["type"] == "Failed"]
    assert (len(ok), len(failed)) == (2, 1)
    # The newest of each kind are kept.
    minutes = sorted(int(meta.name(j).rsplit("-", 1)[1]) for j in jobs)
    assert minutes[-1] - minutes[0] <= 3


async def test_cronjob_notices_a_vanished_active_job():
    env = Env()
    env.api.create(CRONJOBS, cronjob("cj", concurrencyPolicy="Forbid"), "default")
    await env.tick(30)
    job = env.jobs()[0]
    env.api.delete(JOBS, meta.name(job), "default")
    await env.driver.settle()
    assert "active" not in env.cj("cj")["status"]
    assert env.rec.messages("MissingJob") == [f"Active job went missing: {meta.name(job)}"]


def test_jobs_to_remove_takes_the_oldest_by_start_time():
    def job(name: str, start: str | None) -> Obj:
        return {"metadata": {"name": name}, "status": {"startTime": start} if start else {}}
    jobs = [job("c", "2026-01-01T00:03:00Z"), job("a", "2026-01-01T00:01:00Z"), job("x", None),
            job("b", "2026-01-01T00:01:00Z")]
    assert [j["metadata"]["name"] for j in jobs_to_remove(jobs, 2)] == ["a", "b"]
    assert jobs_to_remove(jobs, 4) == []
