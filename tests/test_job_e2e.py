"""Jobs and CronJobs end to end with the real kubectl 1.33, named after upstream's
test/e2e/apps/job.go and cronjob.go specs.

The cluster runs the fake runtime: a pod's containers exit as the template's
``fake.kubelite.dev/exit-after`` / ``exit-code`` annotations say, so a "task" that
succeeds after a second or fails at once needs no process and dials nothing.  Nothing
here waits on the clock: every check polls the API for its condition with a deadline.
"""
from __future__ import annotations

import json

import pytest
from conftest import create_namespace, start_server

IMAGE = "gcr.io/google-samples/kubernetes-bootcamp:v1"
P = "fake.kubelite.dev/"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A whole cluster whose node runs the fake runtime."""
    srv = start_server(tmp_path_factory.mktemp("jobs"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture
def ns(request, fake):
    return create_namespace(fake, request, "j")


def job(name: str, *, annotations: dict | None = None, restart: str = "Never", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"metadata": {"annotations": annotations or {}},
                                          "spec": {"restartPolicy": restart,
                                                   "containers": [{"name": "c", "image": IMAGE}]}}}}


SUCCEED = {P + "exit-after": "1s"}
FAIL = {P + "exit-code": "1"}


def create(srv, ns: str, obj: dict) -> None:
    srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj), check=True)


def get(srv, ns: str, kind: str, name: str) -> dict:
    return srv.kjson("get", kind, name, "-n", ns)


def cond(obj: dict, type_: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_ and c["status"] == "True":
            return c
    return None


def wait_condition(srv, ns: str, name: str, type_: str, timeout: float = 60) -> dict:
    return srv.wait_for(lambda: cond(get(srv, ns, "job", name), type_) and get(srv, ns, "job", name),
                        timeout=timeout, what=f"job {name} {type_}")


def job_pods(srv, ns: str, name: str) -> list[dict]:
    return srv.kjson("get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={name}")["items"]


def test_job_should_run_a_job_to_completion_when_tasks_succeed(fake, ns):
    create(fake, ns, job("ok", annotations=SUCCEED, completions=3, parallelism=2))
    j = wait_condition(fake, ns, "ok", "Complete")
    st = j["status"]
    assert st["succeeded"] == 3 and "failed" not in st
    assert st["completionTime"] and st["startTime"] and st["uncountedTerminatedPods"] == {}
    assert cond(j, "SuccessCriteriaMet")["reason"] == "CompletionsReached"
    assert cond(j, "Complete")["message"] == "Reached expected number of succeeded pods"
    pods = job_pods(fake, ns, "ok")
    assert len(pods) == 3
    for p in pods:
        assert p["status"]["phase"] == "Succeeded"
        assert "batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or [])
        assert p["metadata"]["labels"]["job-name"] == "ok"
        assert p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == j["metadata"]["uid"]
    out = fake.kubectl("get", "job", "ok", "-n", ns, check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    picked = fake.kjson("get", "jobs", "-n", ns, "--field-selector", "status.successful=3")["items"]
    assert [x["metadata"]["name"] for x in picked] == ["ok"]
    assert out[1].split()[:3] == ["ok", "Complete", "3/3"]
    events = fake.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=ok", check=True).stdout
    assert "Job completed" in events and "Created pod: ok-" in events


def test_job_generated_selector_and_labels(fake, ns):
    create(fake, ns, job("sel", annotations=SUCCEED, suspend=True))
    j = get(fake, ns, "job", "sel")
    uid = j["metadata"]["uid"]
    assert j["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert j["spec"]["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "sel",
        "controller-uid": uid, "job-name": "sel"}
    spec = j["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"], spec["completionMode"],
            spec["manualSelector"], spec["podReplacementPolicy"]) == (1, 1, 6, "NonIndexed", False,
                                                                      "TerminatingOrFailed")
    # The template cannot change once the Job exists (it is suspended but a container image is not a
    # scheduling directive).
    p = fake.kubectl("patch", "job", "sel", "-n", ns, "--type=json", "-p",
                     '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"x"}]')
    assert p.returncode != 0 and "spec.template: Invalid value" in p.stderr and "field is immutable" in p.stderr


def test_job_validation_errors_match_upstream(fake, ns):
    bad = job("always", restart="Always")
    p = fake.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(bad))
    assert p.returncode != 0
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"' \
        in p.stderr
    indexed = job("idx", completionMode="Indexed", parallelism=2)  # completions is defaulted only without parallelism
    p = fake.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(indexed))
    assert "spec.completions: Required value: when completion mode is Indexed" in p.stderr


def test_job_should_create_pods_for_an_indexed_job_with_completion_indexes_and_specified_hostname(fake, ns):
    create(fake, ns, job("idx", annotations=SUCCEED, completions=4, parallelism=2, completionMode="Indexed"))
    j = wait_condition(fake, ns, "idx", "Complete")
    assert j["status"]["completedIndexes"] == "0-3" and j["status"]["succeeded"] == 4
    pods = job_pods(fake, ns, "idx")
    indexes = sorted(int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert indexes == [0, 1, 2, 3]
    for p in pods:
        ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == ix
        assert p["metadata"]["name"].startswith(f"idx-{ix}-")
        assert p["spec"]["hostname"] == f"idx-{ix}"
        env = p["spec"]["containers"][0]["env"]
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1",
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}} in env


def test_job_should_fail_to_exceed_backoffLimit(fake, ns):
    create(fake, ns, job("fail", annotations=FAIL, backoffLimit=1))
    j = wait_condition(fake, ns, "fail", "Failed", timeout=90)
    assert j["status"]["failed"] == 2
    failed = cond(j, "Failed")
    assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert cond(j, "FailureTarget")["reason"] == "BackoffLimitExceeded"
    assert "completionTime" not in j["status"]
    pods = job_pods(fake, ns, "fail")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Failed" for p in pods)
    out = fake.kubectl("get", "job", "fail", "-n", ns, check=True).stdout.splitlines()[1].split()
    assert out[:3] == ["fail", "Failed", "0/1"]
    events = fake.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=fail",
                          check=True).stdout
    assert "BackoffLimitExceeded" in events


def test_job_should_allow_to_use_a_pod_failure_policy_to_fail_the_job_early(fake, ns):
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}}]}
    create(fake, ns, job("pfp", annotations={P + "exit-code": "42"}, backoffLimit=6, podFailurePolicy=policy))
    j = wait_condition(fake, ns, "pfp", "Failed")
    c = cond(j, "Failed")
    pod_name = job_pods(fake, ns, "pfp")[0]["metadata"]["name"]
    assert c["reason"] == "PodFailurePolicy"
    assert c["message"] == f"Container c for pod {ns}/{pod_name} failed with exit code 42 matching FailJob rule at index 0"
    # No retry: the rule failed the Job at the first failure.
    assert len(job_pods(fake, ns, "pfp")) == 1 and j["status"]["failed"] == 1
    assert j["spec"]["podReplacementPolicy"] == "Failed"


def test_job_should_fail_an_index_after_its_backoff_limit_per_index(fake, ns):
    create(fake, ns, job("perix", annotations=FAIL, completions=2, parallelism=2, completionMode="Indexed",
                         backoffLimitPerIndex=1))
    j = wait_condition(fake, ns, "perix", "Failed", timeout=90)
    c = cond(j, "Failed")
    assert (c["reason"], c["message"]) == ("FailedIndexes", "Job has failed indexes")
    assert j["status"]["failedIndexes"] == "0,1" and j["status"]["failed"] == 4
    assert j["spec"]["backoffLimit"] == 2147483647
    # Each index ran twice; the replacement carries the index's failure count.
    counts = sorted((p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"],
                     p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"])
                    for p in job_pods(fake, ns, "perix"))
    assert counts == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]


def test_kubectl_create_job_and_wait_for_completion(fake, ns):
    fake.kubectl("create", "job", "hello", "-n", ns, f"--image={IMAGE}", check=True)
    j = get(fake, ns, "job", "hello")
    assert j["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    fake.wait_for(lambda: len(job_pods(fake, ns, "hello")) == 1, what="the job's pod")
    # The fake pod runs until stopped: the Job is running, 0/1.
    row = fake.kubectl("get", "job", "hello", "-n", ns, check=True).stdout.splitlines()[1].split()
    assert row[:3] == ["hello", "Running", "0/1"]
    create(fake, ns, job("quick", annotations=SUCCEED))
    p = fake.kubectl("wait", "--for=condition=complete", "job/quick", "-n", ns, "--timeout=60s", timeout=90)
    assert p.returncode == 0 and "job.batch/quick condition met" in p.stdout


def test_job_with_success_policy_should_succeed_when_succeeded_count_is_reached(fake, ns):
    create(fake, ns, job("sp", annotations=SUCCEED, completions=3, parallelism=1, completionMode="Indexed",
                         successPolicy={"rules": [{"succeededCount": 1}]}))
    j = wait_condition(fake, ns, "sp", "Complete")
    c = cond(j, "Complete")
    assert (c["reason"], c["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    assert cond(j, "SuccessCriteriaMet")["reason"] == "SuccessPolicy"
    assert j["status"]["completedIndexes"] == "0" and j["status"]["succeeded"] == 1


def test_job_should_fail_when_exceeds_active_deadline(fake, ns):
    create(fake, ns, job("deadline", activeDeadlineSeconds=2, parallelism=2, completions=2))
    j = wait_condition(fake, ns, "deadline", "Failed")
    c = cond(j, "Failed")
    assert (c["reason"], c["message"]) == ("DeadlineExceeded", "Job was active longer than specified deadline")
    fake.wait_for(lambda: not job_pods(fake, ns, "deadline") or all(
        p["status"].get("phase") in ("Failed", "Succeeded") for p in job_pods(fake, ns, "deadline")),
        timeout=30, what="the deadline job's pods to stop")
    assert get(fake, ns, "job", "deadline")["status"].get("active", 0) == 0


def test_job_should_not_create_pods_when_created_in_suspend_state_then_run_when_resumed(fake, ns):
    create(fake, ns, job("sus", annotations=SUCCEED, suspend=True, completions=2, parallelism=2))
    j = fake.wait_for(lambda: cond(get(fake, ns, "job", "sus"), "Suspended") and get(fake, ns, "job", "sus"),
                      what="Suspended condition")
    c = cond(j, "Suspended")
    assert (c["reason"], c["message"]) == ("JobSuspended", "Job suspended")
    assert job_pods(fake, ns, "sus") == [] and "startTime" not in j["status"]
    assert fake.kubectl("get", "job", "sus", "-n", ns, check=True).stdout.splitlines()[1].split()[1] == "Suspended"
    fake.kubectl("patch", "job", "sus", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}', check=True)
    j = wait_condition(fake, ns, "sus", "Complete")
    resumed = [c for c in j["status"]["conditions"] if c["type"] == "Suspended"][0]
    assert (resumed["status"], resumed["reason"]) == ("False", "JobResumed")


def test_job_should_delete_pods_when_suspended(fake, ns):
    create(fake, ns, job("run", parallelism=2, completions=4))
    fake.wait_for(lambda: len([p for p in job_pods(fake, ns, "run") if p["status"].get("phase") == "Running"]) == 2,
                  what="two running pods")
    fake.kubectl("patch", "job", "run", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}', check=True)
    fake.wait_for(lambda: job_pods(fake, ns, "run") == [], timeout=30, what="pods deleted on suspend")
    j = fake.wait_for(lambda: cond(get(fake, ns, "job", "run"), "Suspended") and get(fake, ns, "job", "run"),
                      what="Suspended")
    # Deleting pods for a suspension is not a failure.
    assert j["status"].get("failed", 0) == 0 and j["status"].get("active", 0) == 0


def test_job_should_remove_pods_when_job_is_deleted(fake, ns):
    create(fake, ns, job("gone", parallelism=2, completions=2))
    fake.wait_for(lambda: len(job_pods(fake, ns, "gone")) == 2, what="two pods")
    fake.kubectl("delete", "job", "gone", "-n", ns, "--wait=true", check=True, timeout=60)
    # The tracking finalizer must not keep the pods around after their Job is gone.
    fake.wait_for(lambda: job_pods(fake, ns, "gone") == [], timeout=45, what="pods of a deleted job gone")


def test_job_should_be_deleted_after_ttl_seconds_after_finished(fake, ns):
    create(fake, ns, job("ttl", annotations=SUCCEED, ttlSecondsAfterFinished=1))
    # The Job may be gone before a poll sees it complete: its events tell that it did.

    fake.wait_for(lambda: fake.kubectl("get", "job", "ttl", "-n", ns).returncode != 0, timeout=45,
                  what="the finished job deleted by its TTL")
    fake.wait_for(lambda: job_pods(fake, ns, "ttl") == [], timeout=30, what="the deleted job's pods gone")
    events = fake.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=ttl",
                          check=True).stdout
    assert "Job completed" in events


def cronjob(name: str, schedule: str, *, annotations: dict | None = None, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": IMAGE}]}}}}}}


def test_cronjob_should_schedule_jobs(fake, ns):
    # Job names carry the start minute, so even "@every 1s" starts at most one Job a
    # minute (as upstream); one is all this needs.
    create(fake, ns, cronjob("tick", "@every 1s", annotations={P + "exit-after": "0.2s"}))
    cj = fake.wait_for(lambda: (c := get(fake, ns, "cronjob", "tick"))["status"].get("lastSuccessfulTime") and c,
                       timeout=60, what="a scheduled job to succeed")
    assert cj["status"]["lastScheduleTime"]
    jobs = fake.kjson("get", "jobs", "-n", ns)["items"]
    assert jobs
    for j in jobs:
        ref = j["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "tick", True)
        assert j["metadata"]["name"].startswith("tick-")
        assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in j["metadata"]["annotations"]
    events = fake.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=tick",
                          check=True).stdout
    assert "Created job tick-" in events and "Saw completed job: tick-" in events
    fake.kubectl("patch", "cronjob", "tick", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}', check=True)
    out = fake.kubectl("get", "cronjob", "tick", "-n", ns, check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert out[1].split()[:5] == ["tick", "@every", "1s", "<none>", "True"]


def test_cronjob_should_delete_successful_finished_jobs_with_limit(fake, ns):
    create(fake, ns, cronjob("hist", "0 0 1 1 *", annotations=SUCCEED, suspend=True, successfulJobsHistoryLimit=1))
    for i in range(3):
        fake.kubectl("create", "job", f"run{i}", "-n", ns, "--from=cronjob/hist", check=True)
        wait_condition(fake, ns, f"run{i}", "Complete")

    def kept() -> list[str] | None:
        names = sorted(j["metadata"]["name"] for j in fake.kjson("get", "jobs", "-n", ns)["items"])
        return names if len(names) == 1 else None
    # The oldest successful Jobs go, the newest stays.
    assert fake.wait_for(kept, timeout=30, what="history limit of 1") == ["run2"]
    events = fake.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=hist",
                          check=True).stdout
    assert "Deleted job run0" in events and "Deleted job run1" in events


def test_kubectl_create_cronjob_and_job_from_cronjob(fake, ns):
    fake.kubectl("create", "cronjob", "hello", "-n", ns, f"--image={IMAGE}", "--schedule=0 0 1 1 *", check=True)
    cj = get(fake, ns, "cronjob", "hello")
    spec = cj["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("0 0 1 1 *", "Allow", False, 3, 1)
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert fake.kubectl("get", "cj", "-n", ns, check=True).stdout.splitlines()[1].split()[:4] == \
        ["hello", "0", "0", "1"]
    # A manual run of a CronJob whose pods succeed at once.
    create(fake, ns, cronjob("nightly", "0 3 * * *", annotations=SUCCEED, timeZone="Europe/Berlin"))
    fake.kubectl("create", "job", "manual", "-n", ns, "--from=cronjob/nightly", check=True)
    j = wait_condition(fake, ns, "manual", "Complete")
    assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert j["metadata"]["ownerReferences"][0]["name"] == "nightly"


def test_cronjob_validation_rejects_tz_in_schedule_and_unknown_zones(fake, ns):
    p = fake.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(cronjob("tz", "TZ=UTC 0 * * * *")))
    assert p.returncode != 0
    assert "cannot use TZ or CRON_TZ in schedule, use timeZone field instead" in p.stderr
    p = fake.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(cronjob("zone", "0 * * * *", timeZone="Mars/Base")))
    assert "spec.timeZone: Invalid value: \"Mars/Base\": unknown time zone Mars/Base" in p.stderr
    p = fake.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(cronjob("six", "* * * * * *")))
    assert "expected exactly 5 fields, found 6" in p.stderr


def test_batch_resources_in_discovery(fake):
    out = fake.kubectl("api-resources", "--api-group=batch", check=True).stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["cronjobs"] == ["cronjobs", "cj", "batch/v1", "true", "CronJob"]
    assert lines["jobs"] == ["jobs", "batch/v1", "true", "Job"]
    assert fake.kubectl("get", "all", "-A", check=True).returncode == 0


def test_job_should_run_real_commands_on_the_process_runtime(tmp_path, request):
    # The process runtime runs the container's command for real: `sh -c "exit 3"` fails the
    # pod with exit code 3 and a back-off limit of 0 fails the Job at once.
    srv = start_server(tmp_path, "--runtime", "process")
    try:
        ns = create_namespace(srv, request, "p")
        for name, script, limit in (("ok", "sleep 1; exit 0", 6), ("bad", "exit 3", 0)):
            j = job(name, backoffLimit=limit)
            j["spec"]["template"]["spec"]["containers"][0]["command"] = ["sh", "-c", script]
            create(srv, ns, j)
        assert cond(wait_condition(srv, ns, "ok", "Complete"), "Complete")
        bad = wait_condition(srv, ns, "bad", "Failed")
        assert cond(bad, "Failed")["reason"] == "BackoffLimitExceeded" and bad["status"]["failed"] == 1
        term = job_pods(srv, ns, "bad")[0]["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 3
    finally:
        srv.stop()
