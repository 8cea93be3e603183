"""Job and CronJob validation (upstream ``pkg/apis/batch/validation``).

Field paths and messages are upstream's, so kubectl prints the same ``is invalid``
lines.  The rules cover what users hit: the generated selector and its four pod labels,
counts, completion modes, per-index back-off, pod failure policies, which spec fields a
running Job may change, and a CronJob's schedule and time zone.  ``cron`` holds the
schedule parser the CronJob controller uses too, so what validation accepts is exactly
what the controller can schedule.
"""
from __future__ import annotations

import re
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.selectors import selector_from_dict
from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    go_label_selector,
    go_string_map,
    immutable,
    index,
    invalid,
    key,
    name_is_dns_subdomain,
    nonnegative,
    not_supported,
    required,
    too_many,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_pod import validate_pod_template

Obj = dict[str, Any]

LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"

MAX_PARALLELISM_INDEXED = 100_000
MAX_COMPLETIONS_INDEXED = 100_000
MAX_CRONJOB_NAME = 52  # the controller appends "-<minutes since epoch>" (11 chars) to job names
_TZ_PART = re.compile(r"^[A-Za-z._+\-0-9]+$")


# --- Job ---------------------------------------------------------------------------------

def _has_label(tmpl_md: Obj, path: str, label: str, want: str) -> Errs:
    """ValidateHasLabel on the pod template's metadata."""
    labels = tmpl_md.get("labels") or {}
    p = key(child(path, "labels"), label)
    if label not in labels:
        return [required(p, f"must be '{want}'")]
    if labels[label] != want:
        return [invalid(p, GoRepr(go_string_map(labels)), f"must be '{want}'")]
    return []


def _generated_selector(job: Obj) -> Errs:
    """ValidateGeneratedSelector: without manualSelector the selector and labels are ours."""
    spec = job.get("spec") or {}
    if spec.get("manualSelector") or spec.get("selector") is None:
        return []
    md = job.get("metadata") or {}
    uid, name = md.get("uid") or "", md.get("name") or ""
    errs: Errs = []
    if not uid:
        errs.append(required("metadata.uid"))
    tmd = (spec.get("template") or {}).get("metadata") or {}
    tpath = "spec.template.metadata"
    errs += _has_label(tmd, tpath, LEGACY_CONTROLLER_UID, uid)
    errs += _has_label(tmd, tpath, LEGACY_JOB_NAME, name)
    errs += _has_label(tmd, tpath, CONTROLLER_UID, uid)
    errs += _has_label(tmd, tpath, JOB_NAME, name)
    try:
        sel = selector_from_dict(spec["selector"])
    except StatusError:
        return errs
    expected = {LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: name, CONTROLLER_UID: uid, JOB_NAME: name}
    if not sel.matches(expected):
        errs.append(invalid("spec.selector", go_label_selector(spec["selector"]), "`selector` not auto-generated"))
    return errs


def _pod_failure_policy(pfp: Obj, path: str, restart_policy: str, per_index: bool) -> Errs:
    errs: Errs = []
    if restart_policy != "Never":
        errs.append(invalid("spec.template.spec.restartPolicy", restart_policy,
                            'only "Never" is supported when podFailurePolicy is specified'))
    rules = pfp.get("rules")
    if rules is None:
        return errs + [required(child(path, "rules"))]
    actions = ["Count", "FailIndex", "FailJob", "Ignore"]
    for i, rule in enumerate(rules):
        rp = index(child(path, "rules"), i)
        action = rule.get("action") or ""
        if action not in actions:
            errs.append(not_supported(child(rp, "action"), action, actions))
        elif action == "FailIndex" and not per_index:
            errs.append(invalid(child(rp, "action"), action,
                                "requires the backoffLimitPerIndex to be set"))
        codes, conds = rule.get("onExitCodes"), rule.get("onPodConditions")
        if codes is not None and conds:
            errs.append(invalid(rp, GoRepr("{}"), "specifying both OnExitCodes and OnPodConditions is not supported"))
        elif codes is None and not conds:
            errs.append(invalid(rp, GoRepr("{}"), "specifying one of OnExitCodes and OnPodConditions is required"))
        if codes is not None:
            errs += _on_exit_codes(codes, child(rp, "onExitCodes"))
        for j, pattern in enumerate(conds or []):
            cp = index(child(rp, "onPodConditions"), j)
            if not pattern.get("type"):
                errs.append(required(child(cp, "type")))
            st = pattern.get("status") or ""
            if st not in ("True", "False", "Unknown"):
                errs.append(not_supported(child(cp, "status"), st, ["False", "True", "Unknown"]))
    return errs


def _on_exit_codes(req: Obj, path: str) -> Errs:
    errs: Errs = []
    op = req.get("operator") or ""
    if op not in ("In", "NotIn"):
        errs.append(not_supported(child(path, "operator"), op, ["In", "NotIn"]))
    values = req.get("values") or []
    if not values:
        errs.append(required(child(path, "values"), "at least one value is required"))
    if len(values) > 255:
        errs.append(invalid(child(path, "values"), len(values), "must have at most 255 elements"))
    prev: int | None = None
    for i, v in enumerate(values):
        vp = index(child(path, "values"), i)
        if op == "In" and v == 0:
            errs.append(invalid(vp, v, "must not be 0 for the In operator"))
        if prev is not None and v == prev:
            errs.append(invalid(vp, v, "must not be duplicated"))
        elif prev is not None and v < prev:
            errs.append(invalid(vp, v, "must be ordered"))
        prev = v
    return errs


def _success_policy(sp: Obj, path: str, mode: str | None, completions: int | None) -> Errs:
    if mode != "Indexed":
        return [invalid(path, GoRepr("{...}"), "requires indexed completion mode")]
    rules = sp.get("rules") or []
    rpath = child(path, "rules")
    if not rules:
        return [required(rpath, "at least one rules must be specified when the successPolicy is specified")]
    if len(rules) > 20:
        return [too_many(rpath, len(rules), 20)]
    errs: Errs = []
    for i, rule in enumerate(rules):
        rp = index(rpath, i)
        count, ixs = rule.get("succeededCount"), rule.get("succeededIndexes")
        if count is None and ixs is None:
            errs.append(required(rp, "at least one of succeededCount or succeededIndexes must be specified"))
        if count is not None:
            if count <= 0:
                errs.append(invalid(child(rp, "succeededCount"), count, "must be greater than or equal to 1"))
            elif completions is not None and count > completions:
                errs.append(invalid(child(rp, "succeededCount"), count,
                                    f"must be less than or equal to {completions} (the number of specified completions)"))
    return errs


def _job_spec_common(spec: Obj, path: str) -> Errs:
    """validateJobSpec: the rules a Job and a CronJob's job template share."""
    errs: Errs = []
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
              "backoffLimitPerIndex", "maxFailedIndexes"):
        if spec.get(f) is not None:
            errs += nonnegative(spec[f], child(path, f))
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported(child(path, "completionMode"), mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed":
        if spec.get("completions") is None:
            errs.append(required(child(path, "completions"), "when completion mode is Indexed"))
        elif spec["completions"] > MAX_COMPLETIONS_INDEXED:
            errs.append(invalid(child(path, "completions"), spec["completions"],
                                f"must be less than or equal to {MAX_COMPLETIONS_INDEXED} when completion mode is Indexed"))
        if (spec.get("parallelism") or 0) > MAX_PARALLELISM_INDEXED:
            errs.append(invalid(child(path, "parallelism"), spec["parallelism"],
                                f"must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"))
    per_index = spec.get("backoffLimitPerIndex") is not None
    if per_index and mode != "Indexed":
        errs.append(required(child(path, "completionMode"),
                             "when backoffLimitPerIndex is specified, completionMode must be Indexed"))
    if spec.get("maxFailedIndexes") is not None:
        if not per_index:
            errs.append(required(child(path, "backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
        elif spec.get("completions") is not None and spec["maxFailedIndexes"] > spec["completions"]:
            errs.append(invalid(child(path, "maxFailedIndexes"), spec["maxFailedIndexes"],
                                "must be less than or equal to completions"))
    tmpl = spec.get("template")
    tpath = child(path, "template")
    errs += validate_pod_template(tmpl, tpath)
    rp = ((tmpl or {}).get("spec") or {}).get("restartPolicy") or ""
    if rp not in ("OnFailure", "Never"):
        errs.append(not_supported(child(tpath, "spec", "restartPolicy"), rp, ["OnFailure", "Never"]))
    if spec.get("podFailurePolicy") is not None:
        errs += _pod_failure_policy(spec["podFailurePolicy"], child(path, "podFailurePolicy"), rp, per_index)
    sp = spec.get("successPolicy")
    if sp is not None:
        errs += _success_policy(sp, child(path, "successPolicy"), mode, spec.get("completions"))
    prp = spec.get("podReplacementPolicy")
    if prp is not None:
        if prp not in ("TerminatingOrFailed", "Failed"):
            errs.append(not_supported(child(path, "podReplacementPolicy"), prp, ["Failed", "TerminatingOrFailed"]))
        elif prp == "TerminatingOrFailed" and spec.get("podFailurePolicy") is not None:
            errs.append(not_supported(child(path, "podReplacementPolicy"), prp, ["Failed"]))
    return errs


def validate_job_spec(spec: Obj, path: str = "spec") -> Errs:
    """ValidateJobSpec: the shared rules plus a selector that matches the template."""
    errs = _job_spec_common(spec, path)
    sel = spec.get("selector")
    if sel is None:
        errs.append(required(child(path, "selector")))
        return errs
    errs += validate_label_selector(sel, child(path, "selector"))
    try:
        selector = selector_from_dict(sel)
    except StatusError:
        return errs
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if not selector.matches(labels or {}):
        errs.append(invalid(child(path, "template", "metadata", "labels"), GoRepr(go_string_map(labels)),
                            "`selector` does not match template `labels`"))
    return errs


_SCHEDULING_FIELDS = ("nodeSelector", "affinity", "tolerations", "schedulingGates")


def semantic(v: Any) -> Any:
    """The value as Semantic.DeepEqual sees it: null, empty maps and empty lists are absent."""
    if isinstance(v, dict):
        out = {k: semantic(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x is not None and x != {} and x != []}
    if isinstance(v, list):
        return [semantic(x) for x in v]
    return v


def _template_update(new: Obj, old: Obj, job_old: Obj) -> Errs:
    """The template is immutable, except scheduling directives of a suspended, never-started Job."""
    nt, ot = semantic(new.get("template")), semantic(old.get("template"))
    if nt == ot:
        return []
    suspended_unstarted = bool(old.get("suspend")) and not ((job_old.get("status") or {}).get("startTime"))
    if suspended_unstarted:
        strip = lambda t: {**(t or {}), "metadata": {k: v for k, v in ((t or {}).get("metadata") or {}).items()  # noqa: E731
                                                     if k not in ("labels", "annotations")},
                           "spec": {k: v for k, v in ((t or {}).get("spec") or {}).items()
                                    if k not in _SCHEDULING_FIELDS}}
        if strip(nt) == strip(ot):
            return []
    return [invalid("spec.template", GoRepr("core.PodTemplateSpec{...}"), "field is immutable")]


def validate_job(obj: Obj, old: Obj | None = None) -> Errs:
    """Create or update validation for a Job (batch/v1)."""
    spec = obj.get("spec") or {}
    if old is None:
        errs = validate_object_meta(obj, True, name_is_dns_subdomain)
        errs += _generated_selector(obj)
        return errs + validate_job_spec(spec)
    ospec = old.get("spec") or {}
    errs = validate_object_meta_update(obj, old)
    errs += validate_job_spec(spec)
    if semantic(spec.get("selector")) != semantic(ospec.get("selector")):
        errs += immutable(spec.get("selector"), ospec.get("selector"), "spec.selector",
                          shown=go_label_selector(spec.get("selector")))
    errs += _template_update(spec, ospec, old)
    elastic = (spec.get("completionMode") == "Indexed" and spec.get("completions") != ospec.get("completions"))
    if elastic:
        # Elastic Indexed Jobs: completions may move only together with parallelism.
        if spec.get("backoffLimitPerIndex") is not None or spec.get("parallelism") != spec.get("completions"):
            errs.append(invalid("spec.completions", spec.get("completions"),
                                "can only be modified in tandem with spec.parallelism"))
    else:
        errs += immutable(spec.get("completions"), ospec.get("completions"), "spec.completions")
    for f in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "successPolicy", "managedBy"):
        if semantic(spec.get(f)) != semantic(ospec.get(f)):
            errs += immutable(spec.get(f), ospec.get(f), f"spec.{f}",
                              shown=GoRepr("{...}") if isinstance(spec.get(f), dict) else None)
    return errs


_STATUS_COUNTERS = ("active", "succeeded", "failed", "ready", "terminating")


def validate_job_status(obj: Obj, old: Obj) -> Errs:
    """ValidateJobUpdateStatus: metadata, and counters that are never negative."""
    errs = validate_object_meta_update(obj, old)
    st = obj.get("status") or {}
    for f in _STATUS_COUNTERS:
        if st.get(f) is not None:
            errs += nonnegative(st[f], f"status.{f}")
    return errs


# --- CronJob -----------------------------------------------------------------------------

def _time_zone(tz: str | None, path: str) -> Errs:
    if tz is None:
        return []
    if tz == "":
        return [invalid(path, tz, "timeZone must be nil or non-empty string")]
    if tz.lower() == "local":
        return [invalid(path, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")]
    from kubelite.api.cronschedule import load_zone
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [invalid(path, tz, f"unknown time zone {tz}")]
    if load_zone(tz) is None:
        return [invalid(path, tz, f"unknown time zone {tz}")]
    return []


def validate_job_template_spec(jt: Obj, path: str) -> Errs:
    """ValidateJobTemplateSpec: the job spec without a selector (it is generated per Job)."""
    spec = jt.get("spec") or {}
    errs = _job_spec_common(spec, child(path, "spec"))
    if spec.get("selector") is not None:
        errs.append(invalid(child(path, "spec", "selector"), go_label_selector(spec["selector"]),
                            "`selector` will be auto-generated"))
    if spec.get("manualSelector"):
        errs.append(not_supported(child(path, "spec", "manualSelector"), True, ["nil", "false"]))
    return errs


def validate_cronjob_spec(spec: Obj, path: str = "spec") -> Errs:
    """ValidateCronJobSpec."""
    from kubelite.api.cronschedule import ScheduleError, parse_schedule
    errs: Errs = []
    schedule = spec.get("schedule") or ""
    if not schedule:
        errs.append(required(child(path, "schedule")))
    else:
        try:
            parse_schedule(schedule)
        except ScheduleError as e:
            errs.append(invalid(child(path, "schedule"), schedule, str(e)))
    errs += _time_zone(spec.get("timeZone"), child(path, "timeZone"))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if spec.get(f) is not None:
            errs += nonnegative(spec[f], child(path, f))
    cp = spec.get("concurrencyPolicy") or ""
    if not cp:
        errs.append(required(child(path, "concurrencyPolicy")))
    elif cp not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported(child(path, "concurrencyPolicy"), cp, ["Allow", "Forbid", "Replace"]))
    jt = spec.get("jobTemplate")
    if jt is None:
        errs.append(required(child(path, "jobTemplate")))
    else:
        errs += validate_job_template_spec(jt, child(path, "jobTemplate"))
    return errs


def _tz_in_schedule(new: Obj, old: Obj | None) -> Errs:
    schedule = (new.get("spec") or {}).get("schedule") or ""
    if old is not None and schedule == (old.get("spec") or {}).get("schedule"):
        return []  # an old object written before the rule keeps its schedule
    if "TZ" in schedule:
        return [invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")]
    return []


def validate_cronjob(obj: Obj, old: Obj | None = None) -> Errs:
    """Create or update validation for a CronJob (batch/v1)."""
    if old is None:
        errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(obj, old)
    name = (obj.get("metadata") or {}).get("name") or ""
    if old is None and len(name) > MAX_CRONJOB_NAME:
        errs.append(invalid("metadata.name", name, f"must be no more than {MAX_CRONJOB_NAME} characters"))
    errs += validate_cronjob_spec(obj.get("spec") or {})
    return errs + _tz_in_schedule(obj, old)


def validate_cronjob_status(obj: Obj, old: Obj) -> Errs:
    """ValidateCronJobStatusUpdate: metadata only."""
    return validate_object_meta_update(obj, old)
