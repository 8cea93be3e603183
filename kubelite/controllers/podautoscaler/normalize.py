"""From a metric proposal to the replica count to set: stabilization and rate limits.

Two paths, as upstream: without ``spec.behavior`` the legacy rules (scale-down
stabilization over the controller's window, scale-up at most ``max(2 × current, 4)``);
with it, each direction's stabilization window and policies (Pods / Percent per period,
combined by selectPolicy Max, Min or Disabled). Each returns the count and the
conditions to set (AbleToScale and ScalingLimited), with upstream's reasons and messages.
The recommendations and scale events it remembers live in ``History``, one per HPA.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)

READY = ("ReadyForNewScale", "recommended size matches current size")
WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")
DOWN_STABILIZED = ("ScaleDownStabilized",
                   "recent recommendations were higher than current one, applying the highest recent recommendation")
UP_STABILIZED = ("ScaleUpStabilized",
                 "recent recommendations were lower than current one, applying the lowest recent recommendation")


@dataclass
class Timestamped:
    """A recommendation or a scale event (replica change), with when it happened."""

    value: int
    at: dt.datetime


@dataclass
class History:
    """What the controller remembers about one HPA between syncs."""

    recommendations: list[Timestamped] = field(default_factory=list)
    scale_up_events: list[Timestamped] = field(default_factory=list)
    scale_down_events: list[Timestamped] = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    """The count to set, and the AbleToScale / ScalingLimited (reason, message) that explain it."""

    replicas: int
    able: tuple[str, str]
    limited: bool
    limit: tuple[str, str]


# -- without behavior -------------------------------------------------------------------

def scale_up_limit(current: int) -> int:
    """calculateScaleUpLimit: at most double, and at least 4."""
    return int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))


def stabilize(history: History, proposal: int, now: dt.datetime, window: dt.timedelta) -> int:
    """The highest recommendation of the window (upstream's stabilizeRecommendation)."""
    best = proposal
    cutoff = now - window
    reused = False
    for rec in history.recommendations:
        if rec.at > cutoff:
            best = max(best, rec.value)
    for rec in history.recommendations:
        if rec.at <= cutoff:
            rec.value, rec.at = proposal, now
            reused = True
            break
    if not reused:
        history.recommendations.append(Timestamped(proposal, now))
    return best


def clamp(current: int, desired: int, min_replicas: int, max_replicas: int) -> tuple[int, tuple[str, str]]:
    """convertDesiredReplicasWithRules: bound by min/max and the legacy scale-up limit."""
    up = scale_up_limit(current)
    if max_replicas > up:
        maximum, why = up, UP_LIMIT
    else:
        maximum, why = max_replicas, TOO_MANY
    minimum = min_replicas if min_replicas else 1
    if desired < minimum:
        return minimum, TOO_FEW
    if desired > maximum:
        return maximum, why
    return desired, WITHIN_RANGE


def normalize(history: History, current: int, proposal: int, min_replicas: int, max_replicas: int,
              now: dt.datetime, downscale_window: dt.timedelta) -> Decision:
    """normalizeDesiredReplicas: stabilize downward moves, then clamp."""
    stabilized = stabilize(history, proposal, now, downscale_window)
    able = DOWN_STABILIZED if stabilized != proposal else READY
    desired, limit = clamp(current, stabilized, min_replicas, max_replicas)
    return Decision(desired, able, desired != stabilized, limit)


# -- with behavior ----------------------------------------------------------------------

def _change_in_period(events: list[Timestamped], period: int, now: dt.datetime) -> int:
    cutoff = now - dt.timedelta(seconds=period)
    return sum(e.value for e in events if e.at > cutoff)


def scale_up_limit_with_rules(current: int, up_events: list[Timestamped], down_events: list[Timestamped],
                              rules: Obj, now: dt.datetime) -> int:
    """calculateScaleUpLimitWithScalingRules."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    pick = min if select == "Min" else max
    result = INT32_MAX if select == "Min" else INT32_MIN
    for pol in rules.get("policies") or []:
        period = int(pol.get("periodSeconds") or 0)
        start = current - _change_in_period(up_events, period, now) + _change_in_period(down_events, period, now)
        value = int(pol.get("value") or 0)
        if pol.get("type") == "Pods":
            proposed = start + value
        else:
            proposed = math.ceil(start * (1 + value / 100))
        result = pick(result, proposed)
    return result


def scale_down_limit_with_rules(current: int, up_events: list[Timestamped], down_events: list[Timestamped],
                                rules: Obj, now: dt.datetime) -> int:
    """calculateScaleDownLimitWithBehaviors (Min keeps the most pods, so it picks the max)."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    pick = max if select == "Min" else min
    result = INT32_MIN if select == "Min" else INT32_MAX
    for pol in rules.get("policies") or []:
        period = int(pol.get("periodSeconds") or 0)
        start = current - _change_in_period(up_events, period, now) + _change_in_period(down_events, period, now)
        value = int(pol.get("value") or 0)
        if pol.get("type") == "Pods":
            proposed = start - value
        else:
            proposed = int(start * (1 - value / 100))
        result = pick(result, proposed)
    return result


def stabilize_with_behavior(history: History, current: int, desired: int, up: Obj, down: Obj,
                            now: dt.datetime) -> tuple[int, tuple[str, str]]:
    """stabilizeRecommendationWithBehaviors: bounded by the windows' lowest and highest recommendations."""
    up_cut = now - dt.timedelta(seconds=int(up.get("stabilizationWindowSeconds") or 0))
    down_cut = now - dt.timedelta(seconds=int(down.get("stabilizationWindowSeconds") or 0))
    up_rec = down_rec = desired
    old_index = -1
    for i, rec in enumerate(history.recommendations):
        if rec.at > up_cut:
            up_rec = min(rec.value, up_rec)
        if rec.at > down_cut:
            down_rec = max(rec.value, down_rec)
        if rec.at < up_cut and rec.at < down_cut:
            old_index = i
    recommendation = max(current, up_rec)
    recommendation = min(recommendation, down_rec)
    if old_index >= 0:
        history.recommendations[old_index] = Timestamped(desired, now)
    else:
        history.recommendations.append(Timestamped(desired, now))
    return recommendation, (UP_STABILIZED if desired >= current else DOWN_STABILIZED)


def limit_with_behavior(history: History, current: int, desired: int, min_replicas: int, max_replicas: int,
                        up: Obj, down: Obj, now: dt.datetime) -> tuple[int, tuple[str, str]]:
    """convertDesiredReplicasWithBehaviorRate."""
    if desired > current:
        limit = max(current, scale_up_limit_with_rules(current, history.scale_up_events, history.scale_down_events,
                                                       up, now))
        if max_replicas > limit:
            maximum, why = limit, UP_LIMIT
        else:
            maximum, why = max_replicas, TOO_MANY
        if desired > maximum:
            return maximum, why
    elif desired < current:
        limit = min(current, scale_down_limit_with_rules(current, history.scale_up_events,
                                                         history.scale_down_events, down, now))
        if min_replicas < limit:
            minimum, why = limit, DOWN_LIMIT
        else:
            minimum, why = min_replicas, TOO_FEW
        if desired < minimum:
            return minimum, why
    return desired, WITHIN_RANGE


def normalize_with_behavior(history: History, current: int, proposal: int, min_replicas: int, max_replicas: int,
                            behavior: Obj, now: dt.datetime, downscale_window: dt.timedelta) -> Decision:
    """normalizeDesiredReplicasWithBehaviors."""
    up = dict(behavior.get("scaleUp") or {})
    down = dict(behavior.get("scaleDown") or {})
    if down.get("stabilizationWindowSeconds") is None:
        down["stabilizationWindowSeconds"] = int(downscale_window.total_seconds())
    stabilized, why = stabilize_with_behavior(history, current, proposal, up, down, now)
    able = why if stabilized != proposal else READY
    desired, limit = limit_with_behavior(history, current, stabilized, min_replicas, max_replicas, up, down, now)
    return Decision(desired, able, desired != stabilized, limit)


def longest_period(rules: Obj) -> int:
    """The longest policy period of one direction (how long its events matter)."""
    return max((int(p.get("periodSeconds") or 0) for p in rules.get("policies") or []), default=0)


def record_scale(history: History, behavior: Obj | None, previous: int, new: int, now: dt.datetime) -> None:
    """storeScaleEvent: remember a change, for the rate policies (only with a behavior)."""
    if behavior is None or new == previous:
        return
    if new > previous:
        events, rules, change = history.scale_up_events, behavior.get("scaleUp") or {}, new - previous
    else:
        events, rules, change = history.scale_down_events, behavior.get("scaleDown") or {}, previous - new
    cutoff = now - dt.timedelta(seconds=longest_period(rules))
    events[:] = [e for e in events if e.at > cutoff]
    events.append(Timestamped(change, now))
