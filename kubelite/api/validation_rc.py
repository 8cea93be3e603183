"""ReplicationController validation (upstream ``pkg/apis/core/validation``).

An RC is a ReplicaSet whose selector is a plain label map: the map must not be empty
(defaulting fills it from the template's labels), it must match those labels, and the
template must restart always and have no active deadline.  Unlike a ReplicaSet's, the
selector may change after creation.
"""
from __future__ import annotations

from kubelite.api.selectors import selector_from_set
from kubelite.api.validation_apps import validate_apps_status
from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    forbidden,
    go_string_map,
    invalid,
    name_is_dns_subdomain,
    nonnegative,
    not_supported,
    required,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_pod import validate_pod_template


def _template(spec: dict, path: str) -> Errs:
    """ValidatePodTemplateSpecForRC."""
    tmpl = spec.get("template")
    if tmpl is None:
        return [required(path)]
    errs: Errs = []
    selector = spec.get("selector")
    labels = (tmpl.get("metadata") or {}).get("labels")
    if selector and not selector_from_set(selector).matches(labels or {}):
        errs.append(invalid(child(path, "metadata", "labels"), GoRepr(go_string_map(labels)),
                            "`selector` does not match template `labels`"))
    errs += validate_pod_template(tmpl, path)
    tspec = tmpl.get("spec") or {}
    restart = tspec.get("restartPolicy") or ""
    if restart != "Always":
        errs.append(not_supported(child(path, "spec", "restartPolicy"), restart, ("Always",)))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(child(path, "spec", "activeDeadlineSeconds"),
                              "activeDeadlineSeconds in ReplicationController is not Supported"))
    return errs


def validate_rc_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidateReplicationControllerSpec."""
    errs = nonnegative(spec.get("minReadySeconds", 0), child(path, "minReadySeconds"))
    if not spec.get("selector"):
        errs.append(required(child(path, "selector")))
    errs += nonnegative(spec.get("replicas", 0), child(path, "replicas"))
    return errs + _template(spec, child(path, "template"))


def validate_replication_controller(obj: dict, old: dict | None = None) -> Errs:
    """Create or update validation for a ReplicationController (core/v1)."""
    if old is None:
        errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(obj, old)
    return errs + validate_rc_spec(obj.get("spec") or {})


def validate_rc_status(new: dict, old: dict) -> Errs:
    """ValidateReplicationControllerStatusUpdate: the ReplicaSet's counter rules, word for word."""
    return validate_apps_status("ReplicaSet", new, old)
