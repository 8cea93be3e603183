"""A canary rolled back on its error rate, as the proxies count it (kubelite's own; opt-in).

``rollout.kubelite.dev/canary-max-error-rate: "5%"`` (and optionally
``rollout.kubelite.dev/canary-min-requests: "20"``) on a ``strategy: canary`` Deployment:
while a canary step is in flight, the new revision's errors / requests *over the step*
are compared with the limit, once at least the minimum number of requests was seen.
Over the limit, the new pods count as failing (``CanaryErrorRate``) and autorollback.py
rolls back the way it does for any failure: event, condition, ``rolled-back-from``, and
never again from the restored template.

The counts come from every node's proxy Lease (proxy/stats.py: connections, failed
connects and HTTP 5xx; the nftables path sees no 5xx).  "Over the step": when a step
begins, canary.py records the new revision's counts so far in
``rollout.kubelite.dev/canary-traffic-baseline``; the rate is taken from what came after.
A proxy that restarts starts from 0, which ``Counts.since`` treats as a fresh start.

The proxies publish every ~2 s, so the controller looks again every
``POLL_INTERVAL`` while a step is judged (no watch on Leases: they change all the time,
and only Deployments under a judged canary care).
"""
from __future__ import annotations

from typing import Any, NamedTuple

from kubelite.api import meta
from kubelite.controllers.deployment import util
from kubelite.proxy.stats import Counts, revision_traffic

Obj = dict[str, Any]

PREFIX = util.KUBELITE_ROLLOUT_PREFIX
MAX_ERROR_RATE = PREFIX + "canary-max-error-rate"
MIN_REQUESTS = PREFIX + "canary-min-requests"
BASELINE = util.CANARY_BASELINE
DEFAULT_MIN_REQUESTS = 20
POLL_INTERVAL = 2.0

REASON = "CanaryErrorRate"
INVALID_REASON = "InvalidCanaryAnalysis"


class Limits(NamedTuple):
    """The threshold a Deployment asks for: a fraction of requests, and the sample it needs."""

    max_rate: float
    min_requests: int


def parse_rate(text: str) -> float:
    """``"5%"`` → 0.05, ``"0.05"`` → 0.05; ValueError for anything outside 0–100 %."""
    t = text.strip()
    try:
        rate = float(t[:-1].strip()) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f'"{text}" is not a rate (use e.g. "5%" or "0.05")') from None
    if not 0 <= rate <= 1:  # (NaN fails this too)
        raise ValueError(f'"{text}" is not between 0% and 100%')
    return rate


def parse_min_requests(text: str) -> int:
    """A positive whole number of requests; ValueError otherwise."""
    try:
        n = int(text.strip())
    except ValueError:
        raise ValueError(f'"{text}" is not a whole number of requests') from None
    if n < 1:
        raise ValueError(f'"{text}" must be at least 1')
    return n


def limits_of(d: Obj) -> Limits | None:
    """The Deployment's threshold, None when it asks for none; ValueError naming a bad annotation."""
    ann = meta.annotations_of(d)
    raw = ann.get(MAX_ERROR_RATE)
    if raw is None:
        return None
    try:
        rate = parse_rate(raw)
    except ValueError as e:
        raise ValueError(f"{MAX_ERROR_RATE}: {e}") from None
    n = DEFAULT_MIN_REQUESTS
    if ann.get(MIN_REQUESTS) is not None:
        try:
            n = parse_min_requests(ann[MIN_REQUESTS])
        except ValueError as e:
            raise ValueError(f"{MIN_REQUESTS}: {e}") from None
    return Limits(rate, n)


def format_counts(c: Counts) -> str:
    """The baseline annotation's text: all four counts."""
    return ",".join(str(n) for n in c)


def parse_counts(text: str | None) -> Counts:
    """The baseline annotation back (zeros when missing or malformed)."""
    try:
        parts = [int(p) for p in (text or "").split(",")]
    except ValueError:
        return Counts()
    return Counts(*parts) if len(parts) == 4 and all(p >= 0 for p in parts) else Counts()


def percent(x: float) -> str:
    """0.3 → "30%", 0.025 → "2.5%"."""
    return f"{x * 100:.1f}".rstrip("0").rstrip(".") + "%"


def verdict(step: Counts, limits: Limits) -> str | None:
    """The failure message when the step's error rate is over the limit with enough requests."""
    if step.requests < limits.min_requests or step.requests <= 0:
        return None
    rate = step.errors / step.requests
    if rate <= limits.max_rate:
        return None
    kinds = []
    if step.http5xx:
        kinds.append(f"{step.http5xx} HTTP 5xx")
    if step.failed:
        kinds.append(f"{step.failed} failed connection{'s' if step.failed != 1 else ''}")
    detail = f" ({', '.join(kinds)})" if kinds else ""
    return (f"error rate {percent(rate)} over the limit of {percent(limits.max_rate)}: "
            f"{step.errors} of {step.requests} requests through the proxy failed{detail}")


def judged(d: Obj) -> bool:
    """A canary (not blue/green) step is in flight and the Deployment asks for a threshold."""
    ann = meta.annotations_of(d)
    return ((ann.get(PREFIX + "strategy") or "").strip().lower() == "canary"
            and bool(ann.get(util.CANARY_REVISION)) and MAX_ERROR_RATE in ann)


def total_counts(leases: list[Obj], namespace: str, h: str) -> Counts:
    """A revision's counts so far, every node's proxy summed."""
    return revision_traffic(leases, namespace, [h])[h]


def step_counts(leases: list[Obj], d: Obj, h: str) -> Counts:
    """The new revision's counts since its step began."""
    total = total_counts(leases, meta.namespace(d), h)
    return total.since(parse_counts(meta.annotations_of(d).get(BASELINE)))
