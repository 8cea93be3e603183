"""Job controller against tests/fakeapi.py with a controlled clock: finalizer-based
tracking (UIDs written to uncountedTerminatedPods before the finalizer goes), the
exponential back-off between failed pods, the back-off limit, suspension and orphans."""
from __future__ import annotations

from typing import Any

from kubelite.api import meta
from kubelite.api.resources import JOBS, PODS
from kubelite.controllers.job import JobController
from kubelite.controllers.job.util import TRACKING_FINALIZER
from tests.fakeapi import Driver, FakeAPI, RecordingRecorder

Obj = dict[str, Any]


def job(name: str, **spec: Any) -> Obj:
    uid_label = {"batch.kubernetes.io/controller-uid": f"sel-{name}"}
    base = {"completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "suspend": False, "selector": {"matchLabels": uid_label},
            "template": {"metadata": {"labels": dict(uid_label)},
                         "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {**base, **spec}}


class Env:
    def __init__(self) -> None:
        self.api = FakeAPI()
        self.rec = RecordingRecorder()
        self.ctl = JobController(self.api, self.api, recorder=self.rec, now=self.api.clock)
        self.driver = Driver(self.ctl)

    def pods(self, pred: Any = None) -> list[Obj]:
        pods = sorted(self.api.items("pods", "default"), key=lambda p: p["metadata"]["creationTimestamp"])
        return [p for p in pods if pred is None or pred(p)]

    def job(self, name: str = "j") -> Obj:
        return self.api.get_obj("jobs", "default", name)

    def finish(self, pod: Obj, phase: str, code: int = 0) -> None:
        t = meta.rfc3339(self.api.clock())
        pod = self.api.get_obj("pods", "default", meta.name(pod))
        pod["status"] = {"phase": phase, "containerStatuses": [
            {"name": "c", "state": {"terminated": {"exitCode": code, "finishedAt": t}}}]}
        self.api.update(PODS, pod, "status")

    async def resync(self, seconds: float = 0, name: str = "j") -> None:
        """Let time pass, then sync as the delayed requeue would."""
        self.api.clock.advance(seconds)
        self.ctl.queue.add(f"default/{name}")
        await self.driver.settle()


def running(p: Obj) -> bool:
    return (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def status_writes(api: FakeAPI) -> list[Obj]:
    return [o["status"] for verb, plural, o in api.log if verb == "update_status" and plural == "jobs"]


async def test_job_tracks_finished_pods_through_finalizers():
    env = Env()
    env.api.create(JOBS, job("j", completions=2, parallelism=2), "default")
    await env.driver.settle()
    pods = env.pods()
    assert len(pods) == 2
    assert all(p["metadata"]["finalizers"] == [TRACKING_FINALIZER] for p in pods)
    assert env.job()["status"]["active"] == 2 and env.job()["status"]["startTime"]
    for p in pods:
        env.finish(p, "Succeeded")
    await env.driver.settle()
    st = env.job()["status"]
    assert st["succeeded"] == 2 and "active" not in st and st["uncountedTerminatedPods"] == {}
    assert [c["type"] for c in st["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert st["completionTime"]
    assert all(not p["metadata"]["finalizers"] for p in env.pods())
    # The UIDs were written down before the finalizers went, then moved into the counter.
    writes = status_writes(env.api)
    uids = sorted(meta.uid(p) for p in pods)
    flushed = [w for w in writes if (w.get("uncountedTerminatedPods") or {}).get("succeeded")]
    assert flushed and sorted(flushed[0]["uncountedTerminatedPods"]["succeeded"]) == uids
    assert "succeeded" not in flushed[0]
    assert env.rec.messages("Completed") == ["Job completed"]


async def test_job_waits_out_the_exponential_backoff_between_failures():
    env = Env()
    env.api.create(JOBS, job("j"), "default")
    await env.driver.settle()
    env.finish(env.pods()[0], "Failed", 1)
    await env.driver.settle()
    assert env.job()["status"]["failed"] == 1
    assert len(env.pods(running)) == 0            # 10 s back-off after the first failure
    await env.resync(9)
    assert len(env.pods(running)) == 0
    await env.resync(2)
    assert len(env.pods(running)) == 1
    env.finish(env.pods(running)[0], "Failed", 1)
    await env.driver.settle()
    await env.resync(15)                          # the second failure waits 20 s
    assert len(env.pods(running)) == 0
    await env.resync(6)
    assert len(env.pods(running)) == 1
    # A success resets the back-off record.
    env.finish(env.pods(running)[0], "Succeeded")
    await env.driver.settle()
    assert env.job()["status"]["succeeded"] == 1
    assert env.ctl.backoff == {}


async def test_job_fails_past_its_backoff_limit():
    env = Env()
    env.api.create(JOBS, job("j", backoffLimit=0, parallelism=2, completions=2), "default")
    await env.driver.settle()
    first, second = env.pods()
    env.finish(first, "Failed", 1)
    await env.driver.settle()
    st = env.job()["status"]
    assert [c["type"] for c in st["conditions"]] == ["FailureTarget", "Failed"]
    failed = st["conditions"][1]
    assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    # The other, still running pod was deleted and counted as failed.
    assert [meta.name(p) for p in env.pods()] == [meta.name(first)]
    assert st["failed"] == 2 and "completionTime" not in st
    assert env.rec.messages("BackoffLimitExceeded") == ["Job has reached the specified backoff limit"]


async def test_job_suspend_deletes_pods_without_counting_failures_and_resume_restarts_the_deadline():
    env = Env()
    env.api.create(JOBS, job("j", parallelism=2, completions=3, activeDeadlineSeconds=100), "default")
    await env.driver.settle()
    started = env.job()["status"]["startTime"]
    j = env.job()
    j["spec"]["suspend"] = True
    env.api.update(JOBS, j)
    await env.driver.settle()
    st = env.job()["status"]
    assert env.pods() == [] and "failed" not in st
    assert [(c["type"], c["status"], c["reason"]) for c in st["conditions"]] == [("Suspended", "True", "JobSuspended")]
    env.api.clock.advance(500)                    # far past the deadline, but suspended
    j = env.job()
    j["spec"]["suspend"] = False
    env.api.update(JOBS, j)
    await env.driver.settle()
    st = env.job()["status"]
    assert [(c["type"], c["status"], c["reason"]) for c in st["conditions"]] == [("Suspended", "False", "JobResumed")]
    assert st["startTime"] > started and len(env.pods()) == 2
    assert env.rec.messages("Suspended") == ["Job suspended"] and env.rec.messages("Resumed") == ["Job resumed"]


async def test_job_active_deadline_fails_the_job():
    env = Env()
    env.api.create(JOBS, job("j", activeDeadlineSeconds=30), "default")
    await env.driver.settle()
    await env.resync(31)
    st = env.job()["status"]
    assert st["conditions"][-1]["type"] == "Failed" and st["conditions"][-1]["reason"] == "DeadlineExceeded"
    assert env.pods() == []


async def test_orphan_pods_lose_the_tracking_finalizer():
    env = Env()
    env.api.create(JOBS, job("j"), "default")
    await env.driver.settle()
    pod = env.pods()[0]
    env.api.delete(JOBS, "j", "default")
    await env.driver.settle()
    assert env.api.get_obj("pods", "default", meta.name(pod))["metadata"]["finalizers"] == []


async def test_job_on_failure_restarts_count_against_the_backoff_limit():
    env = Env()
    spec = job("j", backoffLimit=2)
    spec["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    env.api.create(JOBS, spec, "default")
    await env.driver.settle()
    pod = env.pods()[0]
    pod["status"] = {"phase": "Running", "containerStatuses": [{"name": "c", "restartCount": 1, "state": {"running": {}}}]}
    env.api.update(PODS, pod, "status")
    await env.driver.settle()
    assert "conditions" not in env.job()["status"]
    pod = env.pods()[0]
    pod["status"]["containerStatuses"][0]["restartCount"] = 2
    env.api.update(PODS, pod, "status")
    await env.driver.settle()
    failed = env.job()["status"]["conditions"][-1]
    assert (failed["type"], failed["reason"]) == ("Failed", "BackoffLimitExceeded")
