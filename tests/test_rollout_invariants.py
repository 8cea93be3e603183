"""Property test: any rolling update respects maxSurge and maxUnavailable at every moment.

Hypothesis picks the size, the two fenceposts (ints or percentages) and how many new
pods become ready between controller rounds; the fake API checks the invariants after
every single write while the controllers roll v1 → v2.
"""
from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubelite.controllers.deployment import util
from tests.invariants import RolloutInvariants
from tests.test_deployment_controller import Env, deployment, image_tag

fencepost = st.one_of(st.integers(min_value=0, max_value=4),
                      st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


@given(replicas=st.integers(min_value=1, max_value=8), surge=fencepost, unavailable=fencepost,
       schedule=st.lists(st.integers(min_value=1, max_value=4), max_size=12))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_rolling_update_respects_surge_and_unavailability(replicas, surge, unavailable, schedule):
    d = deployment("web", replicas, surge=surge, unavailable=unavailable)
    asyncio.run(_roll(d, schedule))


async def _roll(d, schedule):
    env = Env()
    env.deploy(d)
    await env.settle()
    await env.ready_all()
    inv = RolloutInvariants(d)
    env.api.observers.append(lambda verb, plural, obj: inv.check(env.pods()) if plural == "pods" else None)
    env.set_image("web", "v2")
    await env.roll(schedule)
    assert inv.violations == []
    assert inv.checks > 0
    pods = env.pods()
    assert len(pods) == util.replicas(d) and {image_tag(p) for p in pods} == {"v2"}
    st_ = env.get("web")["status"]
    assert st_["updatedReplicas"] == st_["availableReplicas"] == util.replicas(d)
