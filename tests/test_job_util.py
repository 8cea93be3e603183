"""The Job controller's arithmetic: exponential back-off, the back-off record, completion
index intervals, and pod failure policy matching (upstream's table cases)."""
from __future__ import annotations

import datetime as dt

import pytest

from kubelite.controllers.job import util as ju

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def pod(name: str, phase: str, finished: float | None = None, *, exit_code: int = 1, container: str = "c",
        conditions: list | None = None, annotations: dict | None = None) -> dict:
    cs: dict = {"name": container, "state": {"running": {}}}
    if finished is not None:
        cs = {"name": container, "state": {"terminated": {"exitCode": exit_code if phase == "Failed" else 0,
                                                          "finishedAt": at(finished).strftime("%Y-%m-%dT%H:%M:%SZ")}}}
    return {"metadata": {"name": name, "namespace": "ns", "uid": name, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": annotations or {}},
            "status": {"phase": phase, "containerStatuses": [cs], "conditions": conditions or []}}


@pytest.mark.parametrize("failures,want", [
    (0, 0), (1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 320), (7, 600), (8, 600), (30, 600),
])
def test_backoff_duration_doubles_up_to_ten_minutes(failures, want):
    assert ju.backoff_duration(failures) == want


@pytest.mark.parametrize("failures,last,now,want", [
    (0, None, 0, 0),       # no failures: no wait
    (1, 0, 3, 7),          # 10 s after the failure, 3 s gone
    (2, 3, 3, 20),         # the worked example: failures at 0 and 3 → 20 s after 3
    (2, 3, 30, 0),         # already waited long enough
    (3, 0, 40, 0),         # exactly the back-off: done
    (8, 0, 100, 500),      # capped at 600 s
])
def test_remaining_backoff(failures, last, now, want):
    assert ju.remaining_backoff(failures, at(last) if last is not None else None, at(now)) == pytest.approx(want)


def test_backoff_record_counts_failures_since_the_last_success():
    r = ju.new_backoff_record(ju.BackoffRecord(), [], [pod("a", "Failed", 5), pod("b", "Failed", 2)])
    assert r == ju.BackoffRecord(2, at(5))
    # A later success resets; failures after it still count.
    r = ju.new_backoff_record(r, [pod("s", "Succeeded", 10)], [pod("c", "Failed", 8), pod("d", "Failed", 12)])
    assert r == ju.BackoffRecord(1, at(12))
    # A success alone clears the record.
    assert ju.new_backoff_record(r, [pod("s2", "Succeeded", 20)], []) == ju.BackoffRecord(0, None)
    # Nothing new: unchanged.
    assert ju.new_backoff_record(r, [], []) is r


def test_finished_time_falls_back_to_ready_false_then_deletion():
    p = pod("p", "Failed")
    p["status"]["conditions"] = [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:09Z"}]
    assert ju.finished_time(p) == at(9)
    p["status"]["conditions"] = []
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:40Z"
    p["metadata"]["deletionGracePeriodSeconds"] = 30
    assert ju.finished_time(p) == at(10)


@pytest.mark.parametrize("indexes,text", [
    ([], ""), ([0], "0"), ([0, 1], "0,1"), ([0, 1, 2], "0-2"), ([0, 2, 3, 4, 7, 8], "0,2-4,7,8"),
    ([5, 1, 3, 2], "1-3,5"),
])
def test_completed_indexes_text(indexes, text):
    assert ju.format_indexes(indexes) == text
    assert ju.parse_indexes(text, 100) == sorted(set(indexes))


def test_parse_indexes_drops_out_of_range_and_garbage():
    assert ju.parse_indexes("0,2-4,x,9-12", 10) == [0, 2, 3, 4, 9]


def test_first_pending_indexes_skip_taken_ones():
    assert ju.first_pending_indexes(3, 6, excluded={0, 2}) == [1, 3, 4]
    assert ju.first_pending_indexes(5, 3, excluded={1}) == [0, 2]


POLICY = {"rules": [
    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
]}


def test_pod_failure_policy_fail_job_names_the_container_and_rule():
    m = ju.match_pod_failure_policy(POLICY, pod("p", "Failed", 1, exit_code=42, container="main"))
    assert m.fail_job_message == "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0"
    assert m.action == "FailJob" and m.count_failed


def test_pod_failure_policy_ignore_does_not_count():
    p = pod("p", "Failed", 1, exit_code=1,
            conditions=[{"type": "DisruptionTarget", "status": "True"}])
    m = ju.match_pod_failure_policy(POLICY, p)
    assert (m.action, m.count_failed, m.fail_job_message) == ("Ignore", False, None)


def test_pod_failure_policy_not_in_and_no_match():
    assert ju.match_pod_failure_policy(POLICY, pod("p", "Failed", 1, exit_code=7)).action == "Count"
    # Exit code 1 is in the NotIn list and no other rule matches: counted, no action.
    m = ju.match_pod_failure_policy(POLICY, pod("p", "Failed", 1, exit_code=1))
    assert (m.action, m.count_failed) == (None, True)
    # The FailJob rule is for container "main" only.
    assert ju.match_pod_failure_policy(POLICY, pod("p", "Failed", 1, exit_code=42, container="side")).action == "Count"


def test_ensure_condition_never_adds_a_false_condition():
    st: dict = {}
    assert not ju.ensure_condition(st, "Suspended", "False", "JobResumed", "Job resumed", T0)
    assert "conditions" not in st
    assert ju.ensure_condition(st, "Suspended", "True", "JobSuspended", "Job suspended", T0)
    assert not ju.ensure_condition(st, "Suspended", "True", "JobSuspended", "Job suspended", at(5))
    assert ju.ensure_condition(st, "Suspended", "False", "JobResumed", "Job resumed", at(9))
    assert st["conditions"] == [{"type": "Suspended", "status": "False", "reason": "JobResumed",
                                 "message": "Job resumed", "lastProbeTime": "2026-01-01T00:00:09Z",
                                 "lastTransitionTime": "2026-01-01T00:00:09Z"}]


@pytest.mark.parametrize("rules,succeeded,want", [
    ([{"succeededIndexes": "0,2"}], [0, 1], None),                          # index 2 missing
    ([{"succeededIndexes": "0,2"}], [0, 2], "Matched rules at index 0"),
    ([{"succeededIndexes": "0-3", "succeededCount": 2}], [1, 3], "Matched rules at index 0"),
    ([{"succeededIndexes": "0-3", "succeededCount": 3}], [1, 3, 5], None),  # 5 is outside the rule's set
    ([{"succeededIndexes": "9"}, {"succeededCount": 2}], [4, 5], "Matched rules at index 1"),
    ([{"succeededCount": 1}], [], None),
])
def test_success_policy_rules(rules, succeeded, want):
    assert ju.match_success_policy({"rules": rules}, 6, succeeded) == want
