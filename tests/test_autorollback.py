"""Fail-fast rollouts and automatic rollback (kubelite/controllers/deployment/autorollback.py).

The failure detection is tested as pure functions; the controller's behaviour with both
controllers driven step by step against tests/fakeapi.py (the fake kubelet there makes
pods Ready; the failing pods get their container statuses written here, as a kubelet
would write them).
"""
from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

import pytest

from kubelite.api import meta
from kubelite.api.resources import PODS
from kubelite.controllers.deployment import autorollback as ar
from kubelite.controllers.deployment import util
from kubelite.ui.rollout_status import Verdict, parse_timeout, verdict
from tests.test_deployment_controller import IMAGE, Env, deployment, image_tag, image_tag_rs

Obj = dict[str, Any]
T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def pod(name: str = "p", *, waiting: str | None = None, last: str | None = None, term: str | None = None,
        ready: bool | None = None, ready_since: dt.datetime | None = None, created: dt.datetime = T0,
        deleting: bool = False, init: bool = False) -> Obj:
    cs: Obj = {"name": "c", "state": {}, "lastState": {}}
    if waiting:
        cs["state"] = {"waiting": {"reason": waiting, "message": f"{waiting} says why"}}
    elif term:
        cs["state"] = {"terminated": {"reason": term, "exitCode": 137}}
    else:
        cs["state"] = {"running": {}}
    if last:
        cs["lastState"] = {"terminated": {"reason": last, "exitCode": 137 if last == "OOMKilled" else 1}}
    status: Obj = {"initContainerStatuses" if init else "containerStatuses": [cs]}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                 "reason": None if ready else "ContainersNotReady",
                                 "lastTransitionTime": meta.rfc3339(ready_since or created)}]
    md: Obj = {"name": name, "creationTimestamp": meta.rfc3339(created)}
    if deleting:
        md["deletionTimestamp"] = meta.rfc3339(created)
    return {"metadata": md, "status": status}


# --- detection: pure -----------------------------------------------------------------------

@pytest.mark.parametrize("p,reason", [
    (pod(waiting="ErrImagePull"), "ErrImagePull"),
    (pod(waiting="ImagePullBackOff"), "ImagePullBackOff"),
    (pod(waiting="InvalidImageName"), "InvalidImageName"),
    (pod(waiting="ErrImageNeverPull"), "ErrImageNeverPull"),
    (pod(waiting="CrashLoopBackOff", last="Error"), "CrashLoopBackOff"),
    (pod(waiting="CrashLoopBackOff", last="OOMKilled"), "OOMKilled"),   # the cause wins
    (pod(last="OOMKilled"), "OOMKilled"),                               # running again after an OOM kill
    (pod(term="OOMKilled"), "OOMKilled"),
    (pod(waiting="CrashLoopBackOff", init=True), "CrashLoopBackOff"),   # init containers count too
    (pod(waiting="ContainerCreating"), None),
    (pod(waiting="PodInitializing"), None),
    (pod(last="Error"), None),                                          # restarted once, running now
    (pod(ready=True), None),
    (pod(waiting="ImagePullBackOff", deleting=True), None),             # on its way out
])
def test_pod_failure_reasons(p, reason):
    f = ar.pod_failure(p)
    assert (f.reason if f else None) == reason
    if f is not None:
        assert f.pod == "p" and f.reason in f.summary()


def test_pod_failure_message_carries_the_runtime_words():
    f = ar.pod_failure(pod("web-1", waiting="ImagePullBackOff"))
    assert f == ar.Failure("ImagePullBackOff", "web-1", "ImagePullBackOff says why")
    assert f.summary() == "ImagePullBackOff (pod web-1: ImagePullBackOff says why)"


def test_fake_runtime_oom_killed_annotation():
    from kubelite.node.runtime.fake import behaviour
    ann = {"fake.kubelite.dev/oom-killed": "true"}
    b = behaviour({"metadata": {"annotations": ann}}, "c")
    assert (b.oom_killed, b.exit_code, b.exit_after) == (True, 137, 0.0)
    b = behaviour({"metadata": {"annotations": {**ann, "fake.kubelite.dev/exit-code": "9"}}}, "c")
    assert (b.oom_killed, b.exit_code) == (True, 9)
    assert not behaviour({"metadata": {}}, "c").oom_killed


def test_not_ready_counts_from_the_ready_transition_or_creation():
    now = T0 + dt.timedelta(seconds=90)
    assert ar.not_ready_seconds(pod(ready=False, ready_since=T0 + dt.timedelta(seconds=30)), now) == 60
    assert ar.not_ready_seconds(pod(), now) == 90          # no Ready condition yet: since creation
    assert ar.not_ready_seconds(pod(ready=True), now) is None


def test_new_pods_failure_readiness_threshold_and_next_check():
    now = T0 + dt.timedelta(seconds=40)
    young = pod("young", ready=False, created=T0 + dt.timedelta(seconds=30))   # 10 s unready
    old = pod("old", ready=False)                                              # 40 s unready
    assert ar.new_pods_failure([young, old], now, None) == (None, None)      # readiness not judged
    f, wait = ar.new_pods_failure([young, old], now, 60.0)
    assert f is None and wait == 20.0                                        # the older one counts first
    f, wait = ar.new_pods_failure([young, old], now, 30.0)
    assert f is not None and (f.reason, f.pod, wait) == ("NotReady", "old", None)
    assert f.message.startswith("not Ready for 40s (ContainersNotReady")


def test_new_pods_failure_prefers_definite_failures_and_is_stable():
    now = T0 + dt.timedelta(seconds=600)
    pods = [pod("b", waiting="CrashLoopBackOff", created=T0 + dt.timedelta(seconds=2)),
            pod("slow", ready=False), pod("a", waiting="ImagePullBackOff", created=T0 + dt.timedelta(seconds=1))]
    f, _ = ar.new_pods_failure(pods, now, 60.0)
    assert f is not None and (f.reason, f.pod) == ("ImagePullBackOff", "a")
    assert ar.new_pods_failure(reversed(pods), now, 60.0)[0] == f


@pytest.mark.parametrize("ann,expected", [
    ({}, ar.Settings(False, None)),
    ({ar.AUTO_ROLLBACK: "true"}, ar.Settings(True, ar.DEFAULT_FAILURE_THRESHOLD)),
    ({ar.AUTO_ROLLBACK: "True", ar.FAILURE_THRESHOLD: "15"}, ar.Settings(True, 15.0)),
    ({ar.AUTO_ROLLBACK: "false", ar.FAILURE_THRESHOLD: "15"}, ar.Settings(False, 15.0)),
    ({ar.AUTO_ROLLBACK: "yes"}, ar.Settings(False, None)),
    ({ar.AUTO_ROLLBACK: "true", ar.FAILURE_THRESHOLD: "soon"}, ar.Settings(True, ar.DEFAULT_FAILURE_THRESHOLD)),
    ({ar.FAILURE_THRESHOLD: "-5"}, ar.Settings(False, ar.DEFAULT_FAILURE_THRESHOLD)),
])
def test_settings_from_annotations(ann, expected):
    assert ar.settings_of({"metadata": {"annotations": ann}}) == expected


def test_failing_condition_keeps_the_deadline_clock():
    cur = util.new_condition("Progressing", "True", util.RS_UPDATED, "x", T0)
    later = T0 + dt.timedelta(seconds=30)
    cond = ar.failing_condition(cur, "web-abc", ar.Failure("ImagePullBackOff", "web-abc-1"), later)
    assert (cond["status"], cond["reason"]) == ("False", "NewPodsFailing")
    assert cond["lastUpdateTime"] == meta.rfc3339(T0)             # the progress deadline does not move
    assert cond["lastTransitionTime"] == meta.rfc3339(later)
    assert cond["message"] == 'ReplicaSet "web-abc" has failing pods: ImagePullBackOff (pod web-abc-1)'


# --- the controller ---------------------------------------------------------------------------

def fail_pods(env: Env, tag: str, reason: str = "ImagePullBackOff", last: str | None = None) -> int:
    """Write the kubelet's view of failing containers into the ``tag`` pods."""
    n = 0
    for p in env.pods(lambda p: image_tag(p) == tag and not meta.is_deleting(p)):
        p["spec"]["nodeName"] = "node-1"
        p = env.api.update(PODS, p)
        cs: Obj = {"name": "kubernetes-bootcamp", "ready": False, "restartCount": 1 if last else 0,
                   "state": {"waiting": {"reason": reason, "message": f"{reason}: {tag} fails"}}}
        if last:
            cs["lastState"] = {"terminated": {"reason": last, "exitCode": 137}}
        p["status"] = {"phase": "Pending" if reason != "CrashLoopBackOff" else "Running", "containerStatuses": [cs],
                       "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]}
        env.api.update(PODS, p, "status")
        n += 1
    return n


async def on_v2(name: str = "web", replicas: int = 4, annotations: dict[str, str] | None = None,
                **kw: Any) -> Env:
    """A Deployment rolled out on v1 then v2 (both complete)."""
    env = Env()
    d = deployment(name, replicas, **kw)
    d["metadata"]["annotations"] = dict(annotations or {})
    env.deploy(d)
    await ready(env)
    env.set_image(name, "v2")
    await ready(env)
    return env


async def ready(env: Env) -> None:
    """Let the controllers act, then make every pending pod Ready until all settle."""
    await env.settle()
    await env.ready_all()


def progressing(env: Env, name: str = "web") -> Obj:
    cond = util.get_condition(env.get(name)["status"], "Progressing")
    assert cond is not None
    return cond


def template_tag(env: Env, name: str = "web") -> str:
    return env.get(name)["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]


async def test_new_pods_failing_sets_condition_without_rolling_back():
    env = await on_v2()
    env.set_image("web", "v10")
    await env.settle()
    before = progressing(env)
    assert fail_pods(env, "v10") == 2
    await env.settle()
    cond = progressing(env)
    assert (cond["status"], cond["reason"]) == ("False", "NewPodsFailing")
    assert "ImagePullBackOff (pod web-" in cond["message"]
    assert cond["lastUpdateTime"] == before["lastUpdateTime"]
    assert template_tag(env) == "v10"                       # no opt-in: nothing is undone
    assert env.rec.messages("AutoRollback") == []
    assert ar.ROLLED_BACK_FROM not in meta.annotations_of(env.get("web"))


async def test_pods_that_recover_return_to_progressing():
    env = await on_v2()
    env.set_image("web", "v10")
    await env.settle()
    fail_pods(env, "v10")
    await env.settle()
    assert progressing(env)["reason"] == "NewPodsFailing"
    await ready(env)                                   # e.g. the image was pushed after all
    cond = progressing(env)
    assert (cond["status"], cond["reason"]) == ("True", "NewReplicaSetAvailable")


async def test_auto_rollback_on_image_pull_backoff_goes_back_to_the_last_complete_revision():
    env = await on_v2(annotations={ar.AUTO_ROLLBACK: "true"})
    v2_hash = [meta.labels(rs)[util.POD_TEMPLATE_HASH] for rs in env.rss() if image_tag_rs(rs) == "v2"][0]
    assert meta.annotations_of(env.get("web"))[ar.LAST_COMPLETE] == v2_hash
    env.set_image("web", "v10")
    await env.settle()
    fail_pods(env, "v10")
    await env.settle()
    d = env.get("web")
    assert template_tag(env) == "v2"
    ann = meta.annotations_of(d)
    assert ann[ar.AUTO_ROLLBACK] == "true"
    assert "(revision 3): ImagePullBackOff (pod web-" in ann[ar.ROLLED_BACK_FROM]
    [msg] = env.rec.messages("AutoRollback")
    assert msg.startswith('Rolled back deployment "web" to revision 2 ("web-') and "ImagePullBackOff" in msg
    await ready(env)
    d = env.get("web")
    assert {image_tag(p) for p in env.pods(lambda p: not meta.is_deleting(p))} == {"v2"}
    sizes = {image_tag_rs(rs): rs["spec"]["replicas"] for rs in env.rss()}
    assert sizes == {"v1": 0, "v2": 4, "v10": 0}
    cond = progressing(env)
    assert cond["reason"] == "NewReplicaSetAvailable" and "Rolled back automatically from web-" in cond["message"]
    assert ann[ar.ROLLED_BACK_FROM] in cond["message"]
    assert meta.annotations_of(d)[util.REVISION] == "4"
    # The state annotations never travel to a ReplicaSet.
    assert all(not k.startswith("rollout.kubelite.dev/") or k == ar.AUTO_ROLLBACK
               for rs in env.rss() for k in meta.annotations_of(rs))


async def test_auto_rollback_crash_loop_with_oom_names_oomkilled():
    env = await on_v2(annotations={ar.AUTO_ROLLBACK: "true"})
    env.set_image("web", "v3")
    await env.settle()
    fail_pods(env, "v3", "CrashLoopBackOff", last="OOMKilled")
    await env.settle()
    assert template_tag(env) == "v2"
    [msg] = env.rec.messages("AutoRollback")
    assert "OOMKilled" in msg


async def test_auto_rollback_never_loops_and_a_new_template_rolls_out():
    env = await on_v2(annotations={ar.AUTO_ROLLBACK: "true"})
    env.set_image("web", "v10")
    await env.settle()
    fail_pods(env, "v10")
    await env.settle()
    assert template_tag(env) == "v2"
    # Now even the restored pods fail: nothing older is tried, the failed v10 is not retried.
    fail_pods(env, "v2", "CrashLoopBackOff")
    await env.settle()
    assert template_tag(env) == "v2" and len(env.rec.messages("AutoRollback")) == 1
    assert progressing(env)["reason"] == "NewPodsFailing"
    await ready(env)
    assert len(env.rec.messages("AutoRollback")) == 1 and template_tag(env) == "v2"
    # A new template is a new rollout: it rolls out, and clears the rollback record.
    env.set_image("web", "v3")
    await ready(env)
    d = env.get("web")
    assert template_tag(env) == "v3" and progressing(env)["reason"] == "NewReplicaSetAvailable"
    ann = meta.annotations_of(d)
    assert ar.ROLLED_BACK_FROM not in ann
    v3_hash = [meta.labels(rs)[util.POD_TEMPLATE_HASH] for rs in env.rss() if image_tag_rs(rs) == "v3"][0]
    assert ann[ar.LAST_COMPLETE] == v3_hash


async def test_auto_rollback_without_a_completed_revision_only_reports():
    env = Env()
    d = deployment("web", 2, tag="v10")
    d["metadata"]["annotations"] = {ar.AUTO_ROLLBACK: "true"}
    env.deploy(d)
    await env.settle()
    fail_pods(env, "v10")
    await env.settle()
    assert template_tag(env) == "v10" and env.rec.messages("AutoRollback") == []
    assert progressing(env)["reason"] == "NewPodsFailing"


async def test_auto_rollback_on_readiness_threshold():
    env = await on_v2(annotations={ar.AUTO_ROLLBACK: "true", ar.FAILURE_THRESHOLD: "30"})
    env.set_image("web", "v3")
    await env.settle()
    assert template_tag(env) == "v3"          # unready but young: not failing yet
    env.api.clock.advance(31)
    env.dc.enqueue(env.get("web"))            # what the controller's add_after does in real time
    await env.settle()
    assert template_tag(env) == "v2"
    [msg] = env.rec.messages("AutoRollback")
    assert re.search(r"are failing: NotReady \(pod web-\w+-\w+: not Ready for 3\ds\)$", msg), msg


async def test_auto_rollback_on_progress_deadline_exceeded():
    env = await on_v2(annotations={ar.AUTO_ROLLBACK: "true", ar.FAILURE_THRESHOLD: "100000"}, deadline=60)
    env.set_image("web", "v3")
    await env.settle()
    env.api.clock.advance(61)
    env.dc.enqueue(env.get("web"))
    await env.settle()                        # the deadline passes: ProgressDeadlineExceeded …
    env.dc.enqueue(env.get("web"))
    await env.settle()                        # … and the next sync rolls back
    assert template_tag(env) == "v2"
    [msg] = env.rec.messages("AutoRollback")
    assert msg.endswith("are failing: ProgressDeadlineExceeded")


# --- kubelite rollout status: the verdict on what the API holds --------------------------------

def dep(gen: int = 2, observed: int = 2, reason: str = "ReplicaSetUpdated", message: str = "m",
        ann: dict[str, str] | None = None, **counts: int) -> Obj:
    d = deployment("web", 4)
    d["metadata"].update({"uid": "d-uid", "generation": gen, "annotations": dict(ann or {})})
    d["status"] = {"observedGeneration": observed, **counts,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": reason, "message": message}]}
    return d


def owned_rs(d: Obj, h: str, tag: str = "v2") -> Obj:
    t = copy.deepcopy(d["spec"]["template"])
    t["metadata"]["labels"][util.POD_TEMPLATE_HASH] = h
    t["spec"]["containers"][0]["image"] = f"{IMAGE}:{tag}"
    return {"metadata": {"name": f"web-{h}", "uid": f"rs-{h}", "labels": {util.POD_TEMPLATE_HASH: h},
                         "creationTimestamp": meta.rfc3339(T0),
                         "ownerReferences": [{"kind": "Deployment", "uid": "d-uid", "controller": True,
                                              "name": "web", "apiVersion": "apps/v1"}]},
            "spec": {"template": t}}


def test_rollout_status_verdicts():
    v = verdict
    assert v(None, [], "web").error == 'deployments.apps "web" not found'
    assert v(dep(gen=3, observed=2), [], "web").line == "Waiting for deployment spec update to be observed..."
    assert v(dep(updatedReplicas=1), [], "web").line.endswith(": 1 out of 4 new replicas have been updated...")
    assert v(dep(updatedReplicas=4, replicas=5), [], "web").line.endswith(": 1 old replicas are pending termination...")
    assert v(dep(updatedReplicas=4, replicas=4, availableReplicas=3), [], "web").line.endswith(
        ": 3 of 4 updated replicas are available...")
    done = v(dep(updatedReplicas=4, replicas=4, availableReplicas=4), [], "web")
    assert done == Verdict('deployment "web" successfully rolled out', True)
    assert v(dep(reason="ProgressDeadlineExceeded"), [], "web").error == \
        'deployment "web" exceeded its progress deadline'
    failing = v(dep(reason="NewPodsFailing", message="ReplicaSet x has failing pods: OOMKilled (pod p)"), [], "web")
    assert failing.done and failing.error == 'deployment "web" rollout failed: ReplicaSet x has failing pods: OOMKilled (pod p)'
    # A failing condition of an older generation is not this rollout's verdict.
    assert not v(dep(gen=3, observed=2, reason="NewPodsFailing"), [], "web").done


def test_rollout_status_rolled_back_only_while_on_the_restored_template():
    ann = {ar.ROLLED_BACK_FROM: "web-bad (revision 3): ImagePullBackOff (pod p)", ar.LAST_COMPLETE: "good"}
    d = dep(ann=ann, updatedReplicas=4, replicas=4, availableReplicas=4)
    restored = owned_rs(d, "good", tag="v1")                    # the Deployment's template is v1's
    assert verdict(d, [restored], "web").error == \
        'deployment "web" was rolled back automatically from web-bad (revision 3): ImagePullBackOff (pod p)'
    # Someone already set a new template: the record is stale, the rollout is judged as usual.
    other = copy.deepcopy(d)
    other["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:v3"
    assert verdict(other, [restored], "web").line.endswith("successfully rolled out")


@pytest.mark.parametrize("text,seconds", [("0", None), ("90s", 90.0), ("1m30s", 90.0), ("15", 15.0),
                                          ("500ms", 0.5), ("2h", 7200.0)])
def test_rollout_status_timeout(text, seconds):
    assert parse_timeout(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "-5s"])
def test_rollout_status_bad_timeout(text):
    with pytest.raises(ValueError):
        parse_timeout(text)


async def test_auto_rollback_recreate_strategy():
    env = await on_v2(annotations={ar.AUTO_ROLLBACK: "true"}, strategy="Recreate")
    env.set_image("web", "v10")
    await env.settle()
    assert fail_pods(env, "v10") == 4                 # Recreate: every old pod went first
    await env.settle()
    assert template_tag(env) == "v2" and len(env.rec.messages("AutoRollback")) == 1
    await ready(env)
    sizes = {image_tag_rs(rs): rs["spec"]["replicas"] for rs in env.rss()}
    assert sizes == {"v1": 0, "v2": 4, "v10": 0}
    assert progressing(env)["reason"] == "NewReplicaSetAvailable"


# --- kubelite rollout watch explains a rollback ---------------------------------------------------------

def test_rollout_watch_explains_an_automatic_rollback():
    from kubelite.ui.rollout_state import explain_step
    from tests import test_ui_rollout as ui
    d = ui.deployment(image="web:v10", progressing_reason="NewPodsFailing", updated=2)
    rss = [ui.rs("old", "web:v2", 2, 3, 3, 3, 3), ui.rs("new", "web:v10", 3, 2, 2, 0, 0)]
    pods = [ui.pod(str(i), "old", "Ready") for i in range(3)] + [ui.pod(str(i), "new", "ImagePullBackOff")
                                                                for i in range(2)]
    assert explain_step(d, rss, pods).startswith("stuck: new pods cannot pull their image web:v10")
    d = ui.deployment(image="web:v2", progressing_reason="NewReplicaSetAvailable", updated=4)
    d["metadata"]["annotations"] = {ar.ROLLED_BACK_FROM: "web-new (revision 3): ImagePullBackOff (pod p)"}
    rss = [ui.rs("old", "web:v2", 4, 4, 4, 4, 4), ui.rs("new", "web:v10", 3, 0, 0, 0, 0)]
    pods = [ui.pod(str(i), "old", "Ready") for i in range(4)]
    assert explain_step(d, rss, pods) == ("rolled out: 4/4 pods of revision 4 available (rolled back automatically "
                                          "from web-new (revision 3): ImagePullBackOff (pod p))")
