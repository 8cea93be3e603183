"""Deployment + ReplicaSet controllers driven step by step against tests/fakeapi.py.

The RS step sequences are compared with the ones a real v1.28 controller produced
(/work/shared/oracle/traces/rs-step-sequences.txt).  The fake kubelet makes new pods
ready a few at a time between controller rounds, as the recorded kubelet did.
"""
from __future__ import annotations

import copy
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubelite.controllers.deployment import DeploymentController, util
from kubelite.controllers.replicaset import ReplicaSetController
from tests.fakeapi import Driver, FakeAPI, FakeKubelet, RecordingRecorder

Obj = dict[str, Any]
IMAGE = "jocatalin/kubernetes-bootcamp"


def deployment(name: str, replicas: int, tag: str = "v1", *, surge: Any = "25%", unavailable: Any = "25%",
               strategy: str = "RollingUpdate", deadline: int = 600, history: int = 10) -> Obj:
    labels = {"app": name}
    strat: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "kubernetes-bootcamp", "image": f"{IMAGE}:{tag}"}]}},
                     "strategy": strat, "revisionHistoryLimit": history, "progressDeadlineSeconds": deadline}}


class Env:
    """A fake cluster with both controllers, a kubelet and an RS step recorder."""

    def __init__(self) -> None:
        self.api = FakeAPI()
        self.rec = RecordingRecorder()
        self.rsc = ReplicaSetController(self.api, self.api, recorder=self.rec, now=self.api.clock)
        self.dc = DeploymentController(self.api, self.api, recorder=self.rec, now=self.api.clock)
        self.driver = Driver(self.dc, self.rsc)
        self.kubelet = FakeKubelet(self.api, PODS)
        self.steps: list[str] = []
        self.violations: list[str] = []
        self._sizes: dict[str, int] = {}
        self.api.observers.append(self._observe)

    def _observe(self, verb: str, plural: str, obj: Obj) -> None:
        if plural != "replicasets" or verb not in ("create", "update", "patch"):
            return
        tag = obj["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
        name, size = meta.name(obj), int(obj["spec"]["replicas"])
        if name not in self._sizes:
            self.steps.append(f"{tag}:new({size})")
        elif self._sizes[name] != size:
            self.steps.append(f"{tag}:{self._sizes[name]}->{size}")
        self._sizes[name] = size

    def deploy(self, d: Obj) -> Obj:
        return self.api.create(DEPLOYMENTS, d, "default")

    def get(self, name: str) -> Obj:
        return self.api.get_obj("deployments", "default", name)

    def set_image(self, name: str, tag: str) -> None:
        d = self.get(name)
        d["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:{tag}"
        self.api.update(DEPLOYMENTS, d)

    def pods(self, pred=None) -> list[Obj]:
        return [p for p in self.api.items("pods", "default") if pred is None or pred(p)]

    def rss(self) -> list[Obj]:
        return self.api.items("replicasets", "default")

    async def settle(self) -> None:
        await self.driver.settle()

    async def ready_all(self) -> None:
        while self.kubelet.make_ready(1000):
            await self.settle()
        await self.settle()

    async def roll(self, schedule: list[int] | None = None, *, tag_ok=lambda p: True) -> None:
        """Settle; then make pods ready ``schedule[i]`` at a time (1 by default) until done."""
        schedule = list(schedule or [])
        await self.settle()
        while True:
            n = schedule.pop(0) if schedule else 1
            if not self.kubelet.make_ready(n, pred=tag_ok):
                break
            await self.settle()


def image_tag(p: Obj) -> str:
    return p["spec"]["containers"][0]["image"].rsplit(":", 1)[1]


def oracle_steps(name: str) -> str:
    with open("/work/shared/oracle/traces/rs-step-sequences.txt") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(name)


async def started(replicas: int, **kw: Any) -> Env:
    env = Env()
    env.deploy(deployment(kw.pop("name", "web"), replicas, **kw))
    await env.settle()
    await env.ready_all()
    env.steps.clear()
    return env


# --- the oracle's step sequences -------------------------------------------------------------

async def test_rolling_update_4_replicas_matches_recorded_steps():
    env = await started(4, name="kubernetes-bootcamp")
    env.set_image("kubernetes-bootcamp", "v2")
    await env.roll()
    assert " | ".join(env.steps) == oracle_steps("tutorial-v1-to-v2.jsonl")


async def test_rolling_update_10_replicas_default_matches_recorded_steps():
    env = await started(10, name="bootcamp10")
    env.set_image("bootcamp10", "v2")
    # The recorded kubelet once made two new pods ready between two controller steps.
    await env.roll([1, 1, 1, 2])
    assert " | ".join(env.steps) == oracle_steps("r10-default.jsonl")


async def test_rolling_update_surge0_unavailable1_matches_recorded_steps():
    env = await started(10, name="bootcamp10", surge=0, unavailable=1)
    env.set_image("bootcamp10", "v2")
    await env.roll()
    assert " | ".join(env.steps) == oracle_steps("r10-surge0-unavail1.jsonl")
    assert any(m.endswith("to 1 from 0") for m in env.rec.messages("ScalingReplicaSet"))


async def test_rolling_update_surge1_unavailable0_matches_recorded_steps():
    env = await started(10, name="bootcamp10", surge=1, unavailable=0)
    env.set_image("bootcamp10", "v2")
    await env.roll()
    assert " | ".join(env.steps) == oracle_steps("r10-surge1-unavail0.jsonl")


async def test_failing_image_then_undo_matches_recorded_steps():
    env = await started(4, name="kubernetes-bootcamp")
    env.set_image("kubernetes-bootcamp", "v2")
    await env.roll()
    env.steps.clear()
    env.set_image("kubernetes-bootcamp", "v10")
    await env.roll(tag_ok=lambda p: image_tag(p) != "v10")  # v10 never pulls
    assert " | ".join(env.steps) == oracle_steps("tutorial-v2-to-v10.jsonl")
    d = env.get("kubernetes-bootcamp")
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["availableReplicas"], st["unavailableReplicas"]) == (5, 2, 3, 2)
    # kubectl rollout undo: the template goes back to v2's.
    env.steps.clear()
    env.set_image("kubernetes-bootcamp", "v2")
    await env.roll(tag_ok=lambda p: image_tag(p) != "v10")
    assert " | ".join(env.steps) == oracle_steps("tutorial-undo.jsonl")
    revs = sorted((image_tag_rs(rs), meta.annotations_of(rs).get(util.REVISION),
                   meta.annotations_of(rs).get(util.REVISION_HISTORY)) for rs in env.rss())
    assert revs == [("v1", "1", None), ("v10", "3", None), ("v2", "4", "2")]
    assert meta.annotations_of(env.get("kubernetes-bootcamp"))[util.REVISION] == "4"


def image_tag_rs(rs: Obj) -> str:
    return rs["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]


# --- upstream e2e-style specs ---------------------------------------------------------------

async def test_rolling_update_deployment_should_delete_old_pods_and_create_new_ones():
    env = await started(3)
    env.set_image("web", "v2")
    await env.roll()
    pods = env.pods()
    assert len(pods) == 3 and {image_tag(p) for p in pods} == {"v2"}
    d = env.get("web")
    st = d["status"]
    assert st["observedGeneration"] == d["metadata"]["generation"] == 2
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert "unavailableReplicas" not in st
    conds = {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}
    assert conds == {"Available": ("True", "MinimumReplicasAvailable"),
                     "Progressing": ("True", "NewReplicaSetAvailable")}
    new = [rs for rs in env.rss() if image_tag_rs(rs) == "v2"][0]
    h = new["metadata"]["labels"][util.POD_TEMPLATE_HASH]
    assert meta.name(new) == f"web-{h}"
    assert new["spec"]["selector"]["matchLabels"][util.POD_TEMPLATE_HASH] == h
    assert all(p["metadata"]["labels"][util.POD_TEMPLATE_HASH] == h for p in pods)
    assert all(p["metadata"]["generateName"] == f"web-{h}-" for p in pods)
    assert meta.annotations_of(new)[util.DESIRED_REPLICAS] == "3" and meta.annotations_of(new)[util.MAX_REPLICAS] == "4"
    msgs = env.rec.messages("ScalingReplicaSet")
    assert f"Scaled up replica set web-{h} to 1" in msgs


async def test_recreate_deployment_should_delete_old_pods_before_creating_new_ones():
    env = await started(3, strategy="Recreate")
    seen_mixed: list[bool] = []
    env.api.observers.append(lambda v, p, o: seen_mixed.append(
        len({image_tag(x) for x in env.pods(lambda q: not meta.is_deleting(q))}) > 1) if p == "pods" else None)
    env.set_image("web", "v2")
    await env.roll()
    assert {image_tag(p) for p in env.pods()} == {"v2"} and len(env.pods()) == 3
    assert not any(seen_mixed)
    assert env.steps[0] == "v1:3->0" and env.steps[1].startswith("v2:new(")


async def test_deployment_should_support_rollover():
    env = await started(4)
    env.set_image("web", "v2")
    await env.settle()  # v2 pods never become ready before the next template
    env.set_image("web", "v3")
    await env.roll()
    tags = {image_tag_rs(rs): util.replicas(rs) for rs in env.rss()}
    assert tags == {"v1": 0, "v2": 0, "v3": 4}
    assert {image_tag(p) for p in env.pods()} == {"v3"}


async def test_deployment_should_support_proportional_scaling():
    env = await started(10, surge=3, unavailable=2)
    env.set_image("web", "v2")
    await env.settle()  # new RS at 5, old at 8, new pods stuck
    sizes = {image_tag_rs(rs): util.replicas(rs) for rs in env.rss()}
    assert sizes == {"v1": 8, "v2": 5}
    d = env.get("web")
    d["spec"]["replicas"] = 30
    env.api.update(DEPLOYMENTS, d)
    await env.settle()
    sizes = {image_tag_rs(rs): util.replicas(rs) for rs in env.rss()}
    assert sizes == {"v1": 20, "v2": 13}


async def test_iterative_rollouts_reach_the_last_template():
    env = await started(5)
    for tag in ("v2", "v3", "v4"):
        env.set_image("web", tag)
        await env.settle()
        env.kubelet.make_ready(2)
    await env.roll()
    assert {image_tag(p) for p in env.pods()} == {"v4"} and len(env.pods()) == 5
    d = env.get("web")
    assert meta.annotations_of(d)[util.REVISION] == "4"


async def test_paused_deployment_does_not_roll_out_and_reports_paused():
    env = await started(2)
    d = env.get("web")
    d["spec"]["paused"] = True
    env.api.update(DEPLOYMENTS, d)
    await env.settle()
    env.set_image("web", "v2")
    await env.settle()
    assert {image_tag_rs(rs) for rs in env.rss()} == {"v1"}
    cond = util.get_condition(env.get("web")["status"], "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")
    d = env.get("web")
    d["spec"]["paused"] = False
    env.api.update(DEPLOYMENTS, d)
    await env.settle()
    assert {image_tag_rs(rs) for rs in env.rss()} == {"v1", "v2"}
    await env.roll()
    assert {image_tag(p) for p in env.pods()} == {"v2"}


async def test_progress_deadline_exceeded():
    env = await started(4, deadline=20)
    env.set_image("web", "v10")
    await env.roll(tag_ok=lambda p: image_tag(p) != "v10")
    assert util.get_condition(env.get("web")["status"], "Progressing")["reason"] == util.RS_UPDATED
    requeue = env.dc.queue._timers.get("default/web")
    assert requeue is not None  # the controller asked to be woken at the deadline
    env.api.clock.advance(21)
    env.dc.queue.add("default/web")
    await env.settle()
    cond = util.get_condition(env.get("web")["status"], "Progressing")
    new = [rs for rs in env.rss() if image_tag_rs(rs) == "v10"][0]
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"] == f'ReplicaSet "{meta.name(new)}" has timed out progressing.'


async def test_revision_history_limit_cleans_up_old_replicasets():
    env = await started(1, history=1)
    for tag in ("v2", "v3", "v4"):
        env.set_image("web", tag)
        await env.roll()
    assert sorted(image_tag_rs(rs) for rs in env.rss()) == ["v3", "v4"]


async def test_change_cause_is_copied_to_the_new_replicaset():
    env = await started(1)
    d = env.get("web")
    d["metadata"].setdefault("annotations", {})["kubernetes.io/change-cause"] = "kubectl set image web v2"
    d["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:v2"
    env.api.update(DEPLOYMENTS, d)
    await env.roll()
    new = [rs for rs in env.rss() if image_tag_rs(rs) == "v2"][0]
    assert meta.annotations_of(new)["kubernetes.io/change-cause"] == "kubectl set image web v2"


async def test_deployment_adopts_orphaned_replicaset_and_releases_unmatched():
    env = Env()
    d = deployment("web", 2)
    tmpl = copy.deepcopy(d["spec"]["template"])
    orphan = {"metadata": {"name": "web-orphan", "namespace": "default", "labels": {"app": "web"}},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": tmpl}}
    env.api.create(REPLICASETS, orphan, "default")
    await env.settle()
    created = env.deploy(d)
    await env.settle()
    rs = env.api.get_obj("replicasets", "default", "web-orphan")
    assert meta.controller_ref(rs)["uid"] == created["metadata"]["uid"]
    assert len(env.rss()) == 1  # the adopted RS has the template: no new RS
    rs["metadata"]["labels"] = {"app": "other"}
    env.api.update(REPLICASETS, rs)
    await env.settle()
    assert meta.controller_ref(env.api.get_obj("replicasets", "default", "web-orphan")) is None
    assert len(env.rss()) == 2


async def test_deprecated_rollback_annotation_rolls_back_template():
    env = await started(1)
    env.set_image("web", "v2")
    await env.roll()
    d = env.get("web")
    d["metadata"]["annotations"][util.DEPRECATED_ROLLBACK_TO] = "1"
    env.api.update(DEPLOYMENTS, d)
    await env.roll()
    d = env.get("web")
    assert util.DEPRECATED_ROLLBACK_TO not in meta.annotations_of(d)
    assert image_tag_rs({"spec": d["spec"]}) == "v1"
    assert "Rolled back deployment \"web\" to revision 1" in env.rec.messages("DeploymentRollback")
