"""Table tests of the HPA's stabilization and rate limits, after upstream's horizontal_test
(TestNormalizeDesiredReplicas*, TestScalingWithRules, TestStoreScaleEvents)."""
from __future__ import annotations

import datetime as dt

import pytest

from kubelite.api.autoscaling import scale_down_rules, scale_up_rules
from kubelite.controllers.podautoscaler import normalize as norm

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
FIVE_MIN = dt.timedelta(minutes=5)


def ago(seconds: int) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def history(recs: list[tuple[int, int]] = (), up: list[tuple[int, int]] = (),
            down: list[tuple[int, int]] = ()) -> norm.History:
    return norm.History([norm.Timestamped(v, ago(s)) for v, s in recs],
                        [norm.Timestamped(v, ago(s)) for v, s in up],
                        [norm.Timestamped(v, ago(s)) for v, s in down])


def behavior(up: dict | None = None, down: dict | None = None) -> dict:
    return {"scaleUp": scale_up_rules(up), "scaleDown": scale_down_rules(down)}


# -- without spec.behavior ----------------------------------------------------------------

@pytest.mark.parametrize("current,proposal,recs,mn,mx,expected,able,limit", [
    # scale-up limited to max(2 × current, 4)
    (2, 10, [], 1, 20, 4, "ReadyForNewScale", "ScaleUpLimit"),
    (5, 30, [], 1, 20, 10, "ReadyForNewScale", "ScaleUpLimit"),
    (5, 30, [], 1, 8, 8, "ReadyForNewScale", "TooManyReplicas"),
    # scale-down held at the highest recommendation of the last five minutes
    (5, 2, [(5, 60)], 1, 10, 5, "ScaleDownStabilized", "DesiredWithinRange"),
    (5, 2, [(4, 60), (5, 400)], 1, 10, 4, "ScaleDownStabilized", "DesiredWithinRange"),
    (5, 2, [(5, 400)], 1, 10, 2, "ReadyForNewScale", "DesiredWithinRange"),
    (3, 1, [], 2, 10, 2, "ReadyForNewScale", "TooFewReplicas"),
])
def test_normalize_desired_replicas(current, proposal, recs, mn, mx, expected, able, limit) -> None:
    d = norm.normalize(history(recs), current, proposal, mn, mx, NOW, FIVE_MIN)
    assert (d.replicas, d.able[0], d.limit[0]) == (expected, able, limit)
    assert d.limited == (limit != "DesiredWithinRange")


def test_normalize_records_the_recommendation_reusing_an_old_slot() -> None:
    h = history([(7, 400), (3, 10)])
    norm.normalize(h, 3, 2, 1, 10, NOW, FIVE_MIN)
    assert sorted((r.value, r.at) for r in h.recommendations) == [(2, NOW), (3, ago(10))]


# -- with spec.behavior (TestScalingWithRules) --------------------------------------------

SCALING_WITH_RULES = {
    # name: (current, desired, min, max, behavior, history, expected, limit reason)
    "scaleUp with default behavior": (5, 15, 1, 100, behavior(), history(), 10, "ScaleUpLimit"),
    "scaleUp with selectPolicy Min": (5, 15, 1, 100, behavior({"selectPolicy": "Min"}), history(), 9,
                                      "ScaleUpLimit"),
    "scaleUp disabled": (5, 15, 1, 100, behavior({"selectPolicy": "Disabled"}), history(), 5, "ScaleUpLimit"),
    "scaleUp to maxReplicas": (5, 15, 1, 8, behavior(), history(), 8, "TooManyReplicas"),
    "scaleUp with pods policy and earlier events": (
        5, 15, 1, 100, behavior({"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}),
        history(up=[(4, 30)]), 5, "ScaleUpLimit"),
    "scaleUp with events older than the period": (
        5, 15, 1, 100, behavior({"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}),
        history(up=[(4, 90)]), 9, "ScaleUpLimit"),
    "scaleUp with percent policy rounds up": (
        3, 10, 1, 100, behavior({"policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}),
        history(), 5, "ScaleUpLimit"),
    "scaleDown with default behavior": (10, 1, 1, 100, behavior(down={"stabilizationWindowSeconds": 0}),
                                        history(), 1, "DesiredWithinRange"),
    "scaleDown with pods policy": (
        10, 1, 1, 100, behavior(down={"stabilizationWindowSeconds": 0,
                                      "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}),
        history(), 8, "ScaleDownLimit"),
    "scaleDown with percent policy rounds down": (
        10, 1, 1, 100, behavior(down={"stabilizationWindowSeconds": 0,
                                      "policies": [{"type": "Percent", "value": 25, "periodSeconds": 60}]}),
        history(), 7, "ScaleDownLimit"),
    "scaleDown with selectPolicy Min keeps the most pods": (
        10, 1, 1, 100, behavior(down={"stabilizationWindowSeconds": 0, "selectPolicy": "Min", "policies": [
            {"type": "Pods", "value": 2, "periodSeconds": 60}, {"type": "Percent", "value": 50, "periodSeconds": 60}]}),
        history(), 8, "ScaleDownLimit"),
    "scaleDown with earlier events": (
        10, 1, 1, 100, behavior(down={"stabilizationWindowSeconds": 0,
                                      "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}),
        history(down=[(2, 30)]), 10, "ScaleDownLimit"),
    "scaleDown disabled": (10, 1, 1, 100, behavior(down={"selectPolicy": "Disabled", "stabilizationWindowSeconds": 0}),
                           history(), 10, "ScaleDownLimit"),
    "scaleDown to minReplicas": (
        10, 1, 4, 100, behavior(down={"stabilizationWindowSeconds": 0,
                                      "policies": [{"type": "Pods", "value": 8, "periodSeconds": 60}]}),
        history(), 4, "TooFewReplicas"),
}


@pytest.mark.parametrize("name", sorted(SCALING_WITH_RULES))
def test_scaling_with_rules(name: str) -> None:
    current, desired, mn, mx, b, h, expected, reason = SCALING_WITH_RULES[name]
    d = norm.normalize_with_behavior(h, current, desired, mn, mx, b, NOW, FIVE_MIN)
    assert d.replicas == expected
    if expected != desired:
        assert (d.limited, d.limit[0]) == (True, reason)


def test_scale_down_stabilization_window_from_behavior() -> None:
    """A recommendation of 8 within the 60 s window holds a scale-down at the current 5."""
    b = behavior(down={"stabilizationWindowSeconds": 60})
    d = norm.normalize_with_behavior(history([(8, 30)]), 5, 3, 1, 10, b, NOW, FIVE_MIN)
    assert (d.replicas, d.able[0]) == (5, "ScaleDownStabilized")


def test_scale_down_window_defaults_to_the_controller_flag() -> None:
    """scaleDown without stabilizationWindowSeconds uses the controller's window (5 minutes)."""
    b = behavior()
    assert "stabilizationWindowSeconds" not in b["scaleDown"]
    d = norm.normalize_with_behavior(history([(6, 200)]), 5, 2, 1, 10, b, NOW, FIVE_MIN)
    assert (d.replicas, d.able[0]) == (5, "ScaleDownStabilized")
    d = norm.normalize_with_behavior(history([(6, 200)]), 5, 2, 1, 10, b, NOW, dt.timedelta(seconds=100))
    assert d.replicas == 2


def test_scale_up_stabilization_window() -> None:
    """With a 60 s scale-up window the lowest recent recommendation bounds a scale-up."""
    b = behavior({"stabilizationWindowSeconds": 60})
    d = norm.normalize_with_behavior(history([(6, 30)]), 5, 10, 1, 20, b, NOW, FIVE_MIN)
    assert (d.replicas, d.able[0]) == (6, "ScaleUpStabilized")


def test_store_scale_events_drops_outdated_ones() -> None:
    """storeScaleEvent: events older than the longest policy period are dropped."""
    b = behavior({"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]})
    h = history(up=[(3, 90), (2, 30)])
    norm.record_scale(h, b, 5, 9, NOW)
    assert [(e.value, e.at) for e in h.scale_up_events] == [(2, ago(30)), (4, NOW)]
    norm.record_scale(h, b, 9, 6, NOW)
    assert [(e.value, e.at) for e in h.scale_down_events] == [(3, NOW)]
    norm.record_scale(h, None, 6, 1, NOW)
    assert len(h.scale_down_events) == 1
