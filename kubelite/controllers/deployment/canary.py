"""Weighted canary and blue/green rollouts (kubelite's own; opt-in by annotation).

``rollout.kubelite.dev/strategy: canary`` walks ``rollout.kubelite.dev/canary-steps``
(e.g. ``"20%,pause 30s,50%,pause,100%"``):

- the stable ReplicaSet (the last completed revision) stays at full size; the new one
  runs enough pods to serve its share, at least one;
- the share is by requests, not pods: the controller publishes
  ``rollout.kubelite.dev/traffic-weights: "<new hash>=20,<stable hash>=80"`` on the
  Deployment and both proxy data paths split new connections by it (proxy/weights.py);
- a weight step is done once the canary's pods are available; ``pause 30s`` waits that
  long; ``pause`` sets ``spec.paused`` (the step after it runs on `kubectl rollout
  resume`); once the weight reaches 100 % (or the steps run out) the new ReplicaSet
  grows to full size and the old one is scaled down as a rolling update finishes.

``rollout.kubelite.dev/strategy: blue-green`` runs the new ReplicaSet at full size with
weight 0 next to the serving one; once all of its pods are available every new
connection switches at once (100/0) and the old ReplicaSet is scaled down.

Both imply automatic rollback of failing new pods (autorollback.py), unless
``rollout.kubelite.dev/auto-rollback: "false"``.  Where the Deployment goes back to
its last completed revision (automatically or by `rollout undo`), the weights send
everything there at once and the rolling update removes the canary.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any, NamedTuple

from kubelite.api import meta
from kubelite.controllers.deployment import errorrate, progress, sync, util
from kubelite.controllers.deployment.context import DeploymentContext

Obj = dict[str, Any]

STRATEGY = util.KUBELITE_ROLLOUT_PREFIX + "strategy"
STEPS = util.KUBELITE_ROLLOUT_PREFIX + "canary-steps"
CANARY = "canary"
BLUE_GREEN = "blue-green"
DEFAULT_STEPS = "20%,pause 60s,50%,pause 60s,100%"

STEP_REASON = "CanaryStep"
INVALID_REASON = "InvalidCanarySteps"
SWITCH_REASON = "BlueGreenSwitch"

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


class Step(NamedTuple):
    """One canary step: a weight in percent, or a pause (seconds; None = until resumed)."""

    kind: str            # "weight" or "pause"
    weight: int = 0
    seconds: float | None = None

    def text(self) -> str:
        """The step as written in the annotation."""
        if self.kind == "weight":
            return f"{self.weight}%"
        return "pause" if self.seconds is None else f"pause {_seconds_text(self.seconds)}"


def _seconds_text(s: float) -> str:
    return f"{int(s)}s" if s == int(s) else f"{s}s"


def parse_duration(text: str) -> float:
    """``30s``, ``2m``, ``1h30m``, ``45`` (seconds) → seconds; ValueError otherwise."""
    t = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t)
    m = _DURATION.match(t)
    if not t or m is None or not any(m.groups()):
        raise ValueError(f'invalid pause duration "{text}" (use e.g. 30s, 2m, 1h)')
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def parse_steps(text: str) -> list[Step]:
    """Parse ``"20%,pause 30s,50%,pause,100%"``; ValueError naming the bad step."""
    steps: list[Step] = []
    parts = [p.strip() for p in text.split(",")]
    if not text.strip():
        raise ValueError("no steps given")
    last = -1
    for i, part in enumerate(parts, 1):
        low = part.lower()
        if not part:
            raise ValueError(f"step {i} is empty")
        if low.endswith("%"):
            try:
                w = int(low[:-1].strip())
            except ValueError:
                raise ValueError(f'step {i} "{part}": a weight is a whole percentage such as 20%') from None
            if not 0 <= w <= 100:
                raise ValueError(f'step {i} "{part}": a weight must be between 0% and 100%')
            if w < last:
                raise ValueError(f'step {i} "{part}": weights may not go down ({last}% before it)')
            last = w
            steps.append(Step("weight", w))
        elif low == "pause":
            steps.append(Step("pause"))
        elif low.startswith(("pause ", "pause\t")):
            try:
                secs = parse_duration(low[5:])
            except ValueError as e:
                raise ValueError(f'step {i} "{part}": {e}') from None
            if secs <= 0:
                raise ValueError(f'step {i} "{part}": a timed pause must be longer than 0s')
            steps.append(Step("pause", seconds=secs))
        else:
            raise ValueError(f'step {i} "{part}": expected a weight such as 20%, "pause" or "pause 30s"')
    return steps


def strategy_of(d: Obj) -> str | None:
    """``canary``, ``blue-green`` or None (an ordinary Deployment)."""
    v = (meta.annotations_of(d).get(STRATEGY) or "").strip().lower()
    return v if v in (CANARY, BLUE_GREEN) else None


def in_progress(d: Obj) -> bool:
    """A canary or blue/green rollout is under way (it sizes the ReplicaSets itself)."""
    return strategy_of(d) is not None and util.CANARY_REVISION in meta.annotations_of(d)


def canary_size(replicas: int, weight: int) -> int:
    """Pods the canary runs at ``weight`` percent: its share of the replicas, at least 1."""
    return min(replicas, max(1, math.ceil(replicas * weight / 100)))


def format_weights(weights: dict[str, int]) -> str:
    """The traffic-weights annotation text (the same format proxy/weights.py parses)."""
    return ",".join(f"{h}={w}" for h, w in sorted(weights.items()))


def _hash(rs: Obj | None) -> str:
    return meta.labels(rs).get(util.POD_TEMPLATE_HASH, "") if rs is not None else ""


def _available(rs: Obj) -> int:
    return util.status_int(rs, "availableReplicas")


def _revision_text(rs: Obj) -> str:
    try:
        return str(util.revision(rs))
    except ValueError:
        return "?"


class _Writes:
    """The annotation changes one sync wants on the Deployment."""

    def __init__(self, d: Obj):
        self.d = d
        self.changed = False

    def set(self, key: str, value: str | None) -> None:
        ann = meta.meta(self.d).setdefault("annotations", {})
        if value is None:
            if key in ann:
                del ann[key]
                self.changed = True
        elif ann.get(key) != value:
            ann[key] = value
            self.changed = True


async def clear_state(dc: DeploymentContext, d: Obj) -> None:
    """Drop the canary bookkeeping and weights (the rollout is over or was never one)."""
    w = _Writes(d)
    for k in util.CANARY_STATE:
        w.set(k, None)
    if w.changed:
        await dc.update(d)


async def reconcile(dc: DeploymentContext, d: Obj, rs_list: list[Obj]) -> bool:
    """Run one canary / blue-green step; False when the ordinary strategy should run instead."""
    strategy = strategy_of(d)
    if strategy is None:
        if any(k in meta.annotations_of(d) for k in util.CANARY_STATE):
            await clear_state(dc, d)
        return False
    new_rs, old_rss = await sync.get_all_rss_and_sync_revision(dc, d, rs_list, create=True)
    assert new_rs is not None
    h = _hash(new_rs)
    active_old = util.filter_active(old_rss)
    want = util.replicas(d)
    if not active_old or want == 0 or h == meta.annotations_of(d).get(util.LAST_COMPLETE):
        # A first rollout, or back to the last completed revision (an automatic or manual
        # undo): nothing to try carefully; everything goes to the new ReplicaSet at once
        # while the rolling update removes the rest.
        # Weights stay until the old pods are gone, not only scaled away: a terminating pod
        # may still be listed Ready in an EndpointSlice that has not caught up, and without
        # weights it would get its equal share again.
        if active_old or any(dc.replicaset_pods(d, rs) for rs in old_rss):
            w = _Writes(d)
            w.set(util.TRAFFIC_WEIGHTS, format_weights({h: 100}))
            for k in (util.CANARY_REVISION, util.CANARY_STEP, util.CANARY_STEP_STARTED, util.CANARY_BASELINE):
                w.set(k, None)
            if w.changed:
                await dc.update(d)
        else:
            await clear_state(dc, d)
        return False
    stable = _stable(d, active_old)
    if strategy == BLUE_GREEN:
        await _blue_green(dc, d, new_rs, stable, old_rss)
    else:
        await _canary(dc, d, new_rs, stable, old_rss)
    return True


def _stable(d: Obj, active_old: list[Obj]) -> Obj:
    """The ReplicaSet serving before this rollout: the last completed one, else the largest."""
    want = meta.annotations_of(d).get(util.LAST_COMPLETE)
    for rs in active_old:
        if want and _hash(rs) == want:
            return rs
    return util.by_size_older(active_old)[0]


async def _scale_all(dc: DeploymentContext, d: Obj, sizes: list[tuple[Obj, int]]) -> list[Obj]:
    out = []
    for rs, size in sizes:
        _, updated = await sync.scale_rs_and_record_event(dc, rs, size, d)
        out.append(updated)
    return out


async def _finish(dc: DeploymentContext, d: Obj, new_rs: Obj, old_rss: list[Obj]) -> None:
    """All traffic on the new revision: grow it to full size, then scale the old ones down."""
    want = util.replicas(d)
    sizes = [(new_rs, want)]
    if util.replicas(new_rs) >= want and _available(new_rs) >= want:
        sizes += [(rs, 0) for rs in old_rss]
    else:
        sizes += [(rs, util.replicas(rs)) for rs in old_rss]
    updated = await _scale_all(dc, d, sizes)
    await progress.sync_rollout_status(dc, updated, updated[0], d)


async def _blue_green(dc: DeploymentContext, d: Obj, new_rs: Obj, stable: Obj, old_rss: list[Obj]) -> None:
    want = util.replicas(d)
    h, sh = _hash(new_rs), _hash(stable)
    w = _Writes(d)
    w.set(util.CANARY_REVISION, h)
    ready = util.replicas(new_rs) >= want and _available(new_rs) >= want
    weights = {h: 100, sh: 0} if ready else {h: 0, sh: 100}
    switching = ready and meta.annotations_of(d).get(util.TRAFFIC_WEIGHTS) != format_weights(weights)
    w.set(util.TRAFFIC_WEIGHTS, format_weights(weights))
    if w.changed:
        await dc.update(d)
    if switching:
        dc.event(d, "Normal", SWITCH_REASON,
                 f"Switched all traffic from {meta.name(stable)} to {meta.name(new_rs)} "
                 f"(revision {_revision_text(new_rs)}): all {want} new pods are available")
    if ready:
        await _finish(dc, d, new_rs, old_rss)
        return
    others = [(rs, 0) for rs in old_rss if meta.uid(rs) != meta.uid(stable)]
    updated = await _scale_all(dc, d, [(new_rs, want), (stable, want), *others])
    await progress.sync_rollout_status(dc, updated, updated[0], d)


def _state(d: Obj, h: str, now: _dt.datetime) -> tuple[int, _dt.datetime | None, bool]:
    """(step index, when it started — None: not entered yet, after a pause — , whether this
    sync starts the canary)."""
    ann = meta.annotations_of(d)
    if ann.get(util.CANARY_REVISION) != h:
        return 0, now, True
    try:
        idx = max(0, int(ann.get(util.CANARY_STEP) or 0))
    except ValueError:
        idx = 0
    started = ann.get(util.CANARY_STEP_STARTED)
    return idx, (meta.parse_time(started) or now) if started else None, False


def _weight_at(steps: list[Step], idx: int) -> int:
    """The weight in force at step ``idx`` (a weight step counts from its start)."""
    weight = 0
    for s in steps[:idx + 1]:
        if s.kind == "weight":
            weight = s.weight
    return weight if idx < len(steps) else 100


def _step_message(steps: list[Step], idx: int, weight: int, new_rs: Obj, stable: Obj, size: int,
                  until: _dt.datetime | None = None) -> str:
    share = f"{weight}% of traffic to {meta.name(new_rs)} (revision {_revision_text(new_rs)}, " \
            f"{size} pod{'s' if size != 1 else ''}), {100 - weight}% to {meta.name(stable)}"
    if idx >= len(steps):
        return f"Canary steps done: promoting {meta.name(new_rs)} (revision {_revision_text(new_rs)}) to all traffic"
    step = steps[idx]
    head = f"Canary step {idx + 1}/{len(steps)} ({step.text()}): "
    if step.kind == "weight":
        return head + share
    if step.seconds is None:
        return head + f"holding at {share}; the Deployment is paused until `kubectl rollout resume`"
    when = f" until {meta.rfc3339(until)}" if until is not None else ""
    return head + f"holding at {share}{when}"


async def _canary(dc: DeploymentContext, d: Obj, new_rs: Obj, stable: Obj, old_rss: list[Obj]) -> None:
    want = util.replicas(d)
    h, sh = _hash(new_rs), _hash(stable)
    now = dc.now()
    raw = meta.annotations_of(d).get(STEPS)
    try:
        steps = parse_steps(raw if raw is not None else DEFAULT_STEPS)
    except ValueError as e:
        # Hold where we are: the new revision gets no traffic until the steps are fixed.
        dc.event(d, "Warning", INVALID_REASON, f'Invalid {STEPS} "{raw}": {e}; the canary waits with 0% of traffic')
        w = _Writes(d)
        w.set(util.TRAFFIC_WEIGHTS, format_weights({h: 0, sh: 100}))
        if w.changed:
            await dc.update(d)
        others = [(rs, 0) for rs in old_rss if meta.uid(rs) != meta.uid(stable)]
        updated = await _scale_all(dc, d, [(new_rs, 0), (stable, want), *others])
        await progress.sync_rollout_status(dc, updated, updated[0], d)
        return
    idx, started, starting = _state(d, h, now)
    messages: list[str] = []
    if starting or started is None:
        # The first step, or the step after an indefinite pause once resumed, begins now.
        messages.append(_step_message(steps, idx, _weight_at(steps, idx), new_rs, stable,
                                      canary_size(want, _weight_at(steps, idx))))
    since = started or now
    pause_forever = False
    while idx < len(steps):
        step = steps[idx]
        weight = _weight_at(steps, idx)
        if step.kind == "weight":
            if weight >= 100:
                break  # promotion: _finish grows the new ReplicaSet to full size
            size = canary_size(want, weight)
            if not (util.replicas(new_rs) == size and _available(new_rs) >= size):
                break  # its pods are coming; their ReplicaSet's status brings the next sync
        elif step.seconds is not None:
            left = (since + _dt.timedelta(seconds=step.seconds) - now).total_seconds()
            if left > 0:
                dc.enqueue_after(d, left + 0.1)
                break
        else:
            # Spec.paused until `kubectl rollout resume`; the next step is entered then.
            pause_forever = True
            idx += 1
            break
        idx, since = idx + 1, now
        nxt = _weight_at(steps, idx)
        until = now + _dt.timedelta(seconds=steps[idx].seconds or 0) \
            if idx < len(steps) and steps[idx].kind == "pause" and steps[idx].seconds else None
        messages.append(_step_message(steps, idx, nxt, new_rs, stable, canary_size(want, nxt), until))
    # While paused, the weight of the pause itself (the step before the index) holds.
    weight = _weight_at(steps, idx - 1 if pause_forever else idx)
    w = _Writes(d)
    w.set(util.CANARY_REVISION, h)
    w.set(util.CANARY_STEP, str(idx))
    w.set(util.CANARY_STEP_STARTED, "" if pause_forever else meta.rfc3339_micro(since))
    w.set(util.TRAFFIC_WEIGHTS, format_weights({h: weight, sh: 100 - weight}))
    if messages and errorrate.MAX_ERROR_RATE in meta.annotations_of(d):
        # A step began: its error rate counts from here (errorrate.py).
        so_far = errorrate.total_counts(dc.proxy_leases(), meta.namespace(d), h)
        w.set(util.CANARY_BASELINE, errorrate.format_counts(so_far))
    if pause_forever:
        d.setdefault("spec", {})["paused"] = True
        w.changed = True
    if w.changed:
        await dc.update(d)
    for m in messages:
        dc.event(d, "Normal", STEP_REASON, m)
    if pause_forever:
        return  # the paused rung takes over until `kubectl rollout resume`
    if weight >= 100:
        await _finish(dc, d, new_rs, old_rss)
        return
    others = [(rs, 0) for rs in old_rss if meta.uid(rs) != meta.uid(stable)]
    updated = await _scale_all(dc, d, [(new_rs, canary_size(want, weight)), (stable, want), *others])
    await progress.sync_rollout_status(dc, updated, updated[0], d)
