"""The Job controller's arithmetic, pure (upstream backoff_utils.go, indexed_job_utils.go,
pod_failure_policy.go and the small helpers of job_controller.go).

- Back-off: after N consecutive failures (no success since) the next pod waits
  10 s · 2^(N-1), capped at 10 minutes, counted from the last failure's finish time.
  Worked example: failures at t=0 and t=3 with no success → N=2 → 20 s after t=3.
- Completion indexes are kept as ordered intervals and written as ``"0,2-4,7,8"``.
- A pod failure policy rule matches a failed pod on non-zero container exit codes or on
  pod conditions; the first matching rule decides (FailJob, FailIndex, Ignore, Count).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from kubelite.api import meta

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"

DEFAULT_BACKOFF = 10.0        # seconds (DefaultJobPodFailureBackOff)
MAX_BACKOFF = 600.0           # seconds (MaxJobPodFailureBackOff)
MAX_UNCOUNTED_PODS = 500      # UIDs per uncountedTerminatedPods flush
MAX_POD_CREATE_DELETE_PER_SYNC = 500


# --- pods -------------------------------------------------------------------------------

def phase(pod: Obj) -> str:
    """status.phase ("" when unset)."""
    return (pod.get("status") or {}).get("phase") or ""


def has_tracking_finalizer(pod: Obj) -> bool:
    """The pod still carries the job-tracking finalizer (it is not counted yet)."""
    return TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or [])


def only_replace_failed_pods(job: Obj) -> bool:
    """podReplacementPolicy Failed (forced by a pod failure policy): wait for terminating pods."""
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """Failed phase; or, unless only failed pods are replaced, deleted before it succeeded."""
    if phase(pod) == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return meta.is_deleting(pod) and phase(pod) != "Succeeded"


def is_terminating(pod: Obj) -> bool:
    """Being deleted and not yet in a terminal phase (CountTerminatingPods)."""
    return meta.is_deleting(pod) and phase(pod) not in ("Succeeded", "Failed")


def finished_time(pod: Obj) -> _dt.datetime:
    """When the pod ended: latest container finish, else Ready=False transition, else its
    deletion time minus grace, else its creation time."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    latest: _dt.datetime | None = None
    complete = bool(statuses)
    for cs in statuses:
        t = meta.parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t is None:
            complete = False
            break
        latest = t if latest is None or t > latest else latest
    if complete and latest is not None:
        return latest
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "False":
            t = meta.parse_time(c.get("lastTransitionTime"))
            if t is not None:
                return t
    md = pod.get("metadata") or {}
    dt = meta.parse_time(md.get("deletionTimestamp"))
    if dt is not None:
        return dt - _dt.timedelta(seconds=int(md.get("deletionGracePeriodSeconds") or 0))
    return meta.parse_time(md.get("creationTimestamp")) or _dt.datetime.fromtimestamp(0, _dt.UTC)


# --- back-off ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BackoffRecord:
    """Consecutive failures since the last success, and when the latest of them ended."""

    failures_after_last_success: int = 0
    last_failure_time: _dt.datetime | None = None


def new_backoff_record(old: BackoffRecord, new_succeeded: list[Obj], new_failed: list[Obj]) -> BackoffRecord:
    """The record after this sync's newly finished pods (newBackoffRecord)."""
    succeeded = sorted(new_succeeded, key=finished_time)
    failed = sorted(new_failed, key=finished_time)
    if not succeeded:
        if not failed:
            return old
        return BackoffRecord(old.failures_after_last_success + len(failed), finished_time(failed[-1]))
    last_success = finished_time(succeeded[-1])
    count, last = 0, None
    for p in reversed(failed):
        t = finished_time(p)
        if t <= last_success:
            break
        if last is None:
            last = t
        count += 1
    return BackoffRecord(count, last)


def backoff_duration(failures: int, base: float = DEFAULT_BACKOFF, cap: float = MAX_BACKOFF) -> float:
    """base · 2^(failures-1), capped; 0 without failures."""
    if failures <= 0:
        return 0.0
    d = base
    for _ in range(1, failures):
        d *= 2
        if d >= cap:
            return cap
    return min(d, cap)


def remaining_backoff(failures: int, last_failure: _dt.datetime | None, now: _dt.datetime,
                      base: float = DEFAULT_BACKOFF, cap: float = MAX_BACKOFF) -> float:
    """Seconds still to wait before the next pod may be created (getRemainingTimeForFailuresCount)."""
    if failures <= 0 or last_failure is None:
        return 0.0
    d = backoff_duration(failures, base, cap)
    elapsed = (now - last_failure).total_seconds()
    return 0.0 if d < elapsed else d - elapsed


# --- completion indexes -----------------------------------------------------------------

def completion_index(pod: Obj) -> int:
    """The pod's completion index from its annotation (label as fallback); -1 when unknown."""
    md = pod.get("metadata") or {}
    raw = (md.get("annotations") or {}).get(COMPLETION_INDEX)
    if raw is None:
        raw = (md.get("labels") or {}).get(COMPLETION_INDEX)
    try:
        ix = int(raw) if raw is not None else -1
    except ValueError:
        return -1
    return ix if ix >= 0 else -1


def parse_indexes(text: str | None, completions: int) -> list[int]:
    """``"1,3-5"`` → [1, 3, 4, 5]; out-of-range or malformed parts are dropped."""
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo_s, _, hi_s = part.partition("-")
        try:
            lo, hi = int(lo_s), int(hi_s) if hi_s else int(lo_s)
        except ValueError:
            continue
        out.update(i for i in range(lo, hi + 1) if 0 <= i < completions)
    return sorted(out)


def format_indexes(indexes: list[int] | set[int]) -> str:
    """[0, 2, 3, 4, 7, 8] → ``"0,2-4,7,8"``."""
    parts: list[str] = []
    xs = sorted(set(indexes))
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        # Two neighbours are written as a pair, longer runs as a range (upstream's String()).
        if i == j:
            parts.append(str(xs[i]))
        else:
            parts.append(f"{xs[i]}{',' if j == i + 1 else '-'}{xs[j]}")
        i = j + 1
    return ",".join(parts)


def first_pending_indexes(count: int, completions: int, *, excluded: set[int]) -> list[int]:
    """The ``count`` lowest indexes below ``completions`` that are not ``excluded``."""
    out: list[int] = []
    for i in range(completions):
        if len(out) >= count:
            break
        if i not in excluded:
            out.append(i)
    return out


def index_failure_count(pod: Obj) -> int:
    """The job-index-failure-count annotation (0 when absent or malformed)."""
    return _int_annotation(pod, INDEX_FAILURE_COUNT)


def index_absolute_failure_count(pod: Obj) -> int:
    """Counted plus ignored failures of the pod's index so far."""
    return _int_annotation(pod, INDEX_FAILURE_COUNT) + _int_annotation(pod, INDEX_IGNORED_FAILURE_COUNT)


def _int_annotation(pod: Obj, name: str) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(name)
    try:
        v = int(raw) if raw is not None else 0
    except ValueError:
        return 0
    return max(v, 0)


def match_success_policy(policy: Obj | None, completions: int, succeeded: list[int]) -> str | None:
    """The message of the first successPolicy rule the succeeded indexes meet, or None.

    A rule with ``succeededIndexes`` needs all of them (or ``succeededCount`` of them) to
    have succeeded; a rule with only ``succeededCount`` needs that many indexes."""
    if policy is None or not succeeded:
        return None
    done = set(succeeded)
    for i, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_indexes(rule["succeededIndexes"], completions)
            if not required:
                continue
            matched = len(done.intersection(required))
            if matched and matched >= (len(required) if count is None else int(count)):
                return f"Matched rules at index {i}"
        elif count is not None and len(done) >= int(count):
            return f"Matched rules at index {i}"
    return None


# --- pod failure policy -----------------------------------------------------------------

@dataclass(frozen=True)
class PolicyMatch:
    """What a pod failure policy says about one failed pod."""

    fail_job_message: str | None = None   # set for FailJob
    count_failed: bool = True             # False for Ignore
    action: str | None = None             # the matching rule's action, None when no rule matched


def _match_exit_codes(pod: Obj, req: Obj) -> Obj | None:
    st = pod.get("status") or {}
    values = set(req.get("values") or [])
    name = req.get("containerName")
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        term = (cs.get("state") or {}).get("terminated")
        if not term or int(term.get("exitCode") or 0) == 0:
            continue
        if name and cs.get("name") != name:
            continue
        code = int(term.get("exitCode") or 0)
        if (req.get("operator") == "In") == (code in values):
            return cs
    return None


def _match_conditions(pod: Obj, patterns: list[Obj]) -> Obj | None:
    for pattern in patterns:
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == pattern.get("type") and c.get("status") == (pattern.get("status") or "True"):
                return c
    return None


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> PolicyMatch:
    """The first rule matching a failed pod decides; no rule: count the failure."""
    if policy is None:
        return PolicyMatch()
    who = f"{meta.namespace(pod)}/{meta.name(pod)}"
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            cs = _match_exit_codes(pod, rule["onExitCodes"])
            if cs is None:
                continue
            code = int(((cs.get("state") or {}).get("terminated") or {}).get("exitCode") or 0)
            what = f"Container {cs.get('name')} for pod {who} failed with exit code {code}"
        elif rule.get("onPodConditions"):
            cond = _match_conditions(pod, rule["onPodConditions"])
            if cond is None:
                continue
            what = f"Pod {who} has condition {cond.get('type')}"
        else:
            continue
        if action == "Ignore":
            return PolicyMatch(count_failed=False, action=action)
        if action in ("FailIndex", "Count"):
            return PolicyMatch(action=action)
        if action == "FailJob":
            return PolicyMatch(fail_job_message=f"{what} matching FailJob rule at index {i}", action=action)
    return PolicyMatch()


# --- conditions -------------------------------------------------------------------------

def new_condition(type_: str, status: str, reason: str, message: str, now: _dt.datetime) -> Obj:
    """A JobCondition with both times set to now."""
    t = meta.rfc3339(now)
    return {"type": type_, "status": status, "lastProbeTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def find_condition(status: Obj, type_: str) -> Obj | None:
    """The condition of that type, if any."""
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def has_true_condition(status: Obj, type_: str) -> bool:
    """A condition of that type with status True exists."""
    c = find_condition(status, type_)
    return c is not None and c.get("status") == "True"


def is_finished(job: Obj) -> bool:
    """Complete=True or Failed=True (IsJobFinished)."""
    st = job.get("status") or {}
    return has_true_condition(st, "Complete") or has_true_condition(st, "Failed")


def finish_time(job: Obj) -> _dt.datetime | None:
    """When the Job got its Complete or Failed condition (the TTL clock starts there)."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return meta.parse_time(c.get("lastTransitionTime"))
    return None


def ensure_condition(status: Obj, type_: str, cstatus: str, reason: str, message: str,
                     now: _dt.datetime) -> bool:
    """Add or update a condition; a False one is never added fresh. True when changed."""
    conds = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == type_:
            if c.get("status") != cstatus or c.get("reason") != reason or c.get("message") != message:
                conds[i] = new_condition(type_, cstatus, reason, message, now)
                return True
            return False
    if cstatus == "False":
        if not conds:
            status.pop("conditions", None)
        return False
    conds.append(new_condition(type_, cstatus, reason, message, now))
    return True
