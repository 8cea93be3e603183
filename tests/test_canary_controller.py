"""The canary / blue-green steps of the Deployment controller (canary.py), driven step by step
against tests/fakeapi.py (its fake kubelet makes pods Ready when told; its clock is manual)."""
from __future__ import annotations

from typing import Any

from kubelite.api import meta
from kubelite.api.resources import DEPLOYMENTS
from kubelite.client.errors import Conflict
from kubelite.controllers.deployment import util
from kubelite.proxy.weights import parse_weights
from tests.test_autorollback import fail_pods, on_v2, ready, template_tag
from tests.test_deployment_controller import Env, image_tag_rs

Obj = dict[str, Any]
P = "rollout.kubelite.dev/"


def sizes(env: Env) -> dict[str, int]:
    return {image_tag_rs(rs): rs["spec"]["replicas"] for rs in env.rss()}


def weights(env: Env) -> dict[str, int]:
    """Traffic weights by image tag (the annotation keys them by pod-template-hash)."""
    by_hash = {meta.labels(rs)[util.POD_TEMPLATE_HASH]: image_tag_rs(rs) for rs in env.rss()}
    raw = parse_weights(meta.annotations_of(env.get("web")).get(util.TRAFFIC_WEIGHTS))
    return {by_hash[h]: w for h, w in raw.items()}


def resume(env: Env) -> None:
    d = env.get("web")
    d["spec"]["paused"] = False
    env.api.update(DEPLOYMENTS, d)


async def canary_env(steps: str, replicas: int = 4, strategy: str = "canary") -> Env:
    env = await on_v2(replicas=replicas)
    d = env.get("web")
    d["metadata"]["annotations"].update({P + "strategy": strategy, P + "canary-steps": steps})
    env.api.update(DEPLOYMENTS, d)
    await env.settle()
    assert P + "last-complete" in meta.annotations_of(env.get("web"))
    env.set_image("web", "v3")
    await env.settle()
    return env


async def test_canary_steps_hold_the_stable_size_pause_and_resume():
    env = await canary_env("25%,pause,50%,pause 30s,100%")
    assert sizes(env)["v3"] == 1 and sizes(env)["v2"] == 4
    assert weights(env) == {"v3": 25, "v2": 75}
    await ready(env)
    d = env.get("web")
    assert d["spec"].get("paused") is True          # the indefinite pause
    assert sizes(env) == {"v1": 0, "v2": 4, "v3": 1}
    assert weights(env) == {"v3": 25, "v2": 75}      # held while paused
    msgs = env.rec.messages("CanaryStep")
    assert msgs[0].startswith("Canary step 1/5 (25%): 25% of traffic to web-") and "(revision 3, 1 pod)" in msgs[0]
    assert msgs[-1].startswith("Canary step 2/5 (pause): holding at 25%")
    # Paused: nothing moves, whatever time passes.
    env.api.clock.advance(600)
    env.dc.queue.add("default/web")
    await ready(env)
    assert sizes(env) == {"v1": 0, "v2": 4, "v3": 1}

    resume(env)
    await ready(env)
    assert sizes(env) == {"v1": 0, "v2": 4, "v3": 2} and weights(env) == {"v3": 50, "v2": 50}
    assert env.rec.messages("CanaryStep")[-1].startswith("Canary step 4/5 (pause 30s): holding at 50%")
    assert env.dc.queue._timers.get("default/web") is not None  # woken when the pause ends
    env.api.clock.advance(31)
    env.dc.queue.add("default/web")
    await ready(env)
    assert sizes(env) == {"v1": 0, "v2": 0, "v3": 4}
    assert env.rec.messages("CanaryStep")[-1].startswith("Canary step 5/5 (100%): 100% of traffic")
    ann = meta.annotations_of(env.get("web"))
    assert not any(k in ann for k in util.CANARY_STATE)
    cond = util.get_condition(env.get("web")["status"], "Progressing")
    assert cond is not None and cond["reason"] == "NewReplicaSetAvailable"
    # The bookkeeping never travels to a ReplicaSet.
    assert not any(k in meta.annotations_of(rs) for rs in env.rss() for k in util.CANARY_STATE)


async def test_timed_pause_does_not_advance_early():
    env = await canary_env("50%,pause 60s,100%", replicas=2)
    await ready(env)
    assert sizes(env)["v3"] == 1 and weights(env) == {"v3": 50, "v2": 50}
    env.api.clock.advance(30)
    env.dc.queue.add("default/web")
    await ready(env)
    assert sizes(env)["v3"] == 1 and sizes(env)["v2"] == 2
    env.api.clock.advance(31)
    env.dc.queue.add("default/web")
    await ready(env)
    assert sizes(env) == {"v1": 0, "v2": 0, "v3": 2}


async def test_invalid_steps_hold_with_an_event_never_a_crash():
    env = await canary_env("20%,pause for a while,100%")
    await ready(env)
    assert not [e for _, e in env.driver.errors if not isinstance(e, Conflict)]
    [msg, *_] = env.rec.messages("InvalidCanarySteps")
    assert 'step 2 "pause for a while": invalid pause duration' in msg
    assert sizes(env) == {"v1": 0, "v2": 4, "v3": 0} and weights(env) == {"v3": 0, "v2": 100}
    assert template_tag(env) == "v3"
    # Fixing the annotation starts the canary.
    d = env.get("web")
    d["metadata"]["annotations"][P + "canary-steps"] = "20%,pause 5s,100%"
    env.api.update(DEPLOYMENTS, d)
    await ready(env)
    assert sizes(env)["v3"] == 1


async def test_blue_green_runs_green_at_full_size_with_no_traffic_then_switches():
    env = await canary_env("", replicas=3, strategy="blue-green")
    assert weights(env) == {"v3": 0, "v2": 100}
    assert sizes(env) == {"v1": 0, "v2": 3, "v3": 3}
    env.kubelet.make_ready(2, pred=lambda p: p["spec"]["containers"][0]["image"].endswith(":v3"))
    await env.settle()
    assert weights(env) == {"v3": 0, "v2": 100}      # not every green pod is available yet
    assert env.rec.messages("BlueGreenSwitch") == []
    await ready(env)
    [switch] = env.rec.messages("BlueGreenSwitch")
    assert "to web-" in switch and "all 3 new pods are available" in switch
    assert sizes(env) == {"v1": 0, "v2": 0, "v3": 3}
    assert not any(k in meta.annotations_of(env.get("web")) for k in util.CANARY_STATE)


async def test_failing_canary_is_rolled_back_and_the_stable_keeps_all_traffic():
    env = await canary_env("20%,pause,100%")
    fail_pods(env, "v3")
    await env.settle()
    assert template_tag(env) == "v2"
    [msg] = env.rec.messages("AutoRollback")
    assert "ImagePullBackOff" in msg
    # The stable revision was at full size all along: the canary goes at once.
    assert sizes(env) == {"v1": 0, "v2": 4, "v3": 0}
    await ready(env)
    assert sizes(env) == {"v1": 0, "v2": 4, "v3": 0}
    assert not any(k in meta.annotations_of(env.get("web")) for k in util.CANARY_STATE)


async def test_a_deployment_without_the_annotation_rolls_as_before():
    env = await on_v2()
    env.set_image("web", "v3")
    await ready(env)
    assert sizes(env) == {"v1": 0, "v2": 0, "v3": 4}
    assert env.rec.messages("CanaryStep") == []
