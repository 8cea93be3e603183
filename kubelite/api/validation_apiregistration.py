"""Validation of apiregistration.k8s.io/v1 APIService, with upstream's messages and paths."""
from __future__ import annotations

import base64
import binascii
from typing import Any

from kubelite.api.validation_common import (
    Errs,
    child,
    go_quote,
    index,
    invalid,
    is_dns1035_label,
    is_dns1123_subdomain,
    not_supported,
    required,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_rbac import path_segment_name

CONDITION_STATUSES = ("True", "False", "Unknown")


def ca_bundle_bytes(spec: dict) -> bytes:
    """The decoded caBundle (JSON carries it as base64); b"" when unset or not base64."""
    raw = spec.get("caBundle")
    if not isinstance(raw, str) or not raw:
        return b""
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _validate(obj: dict) -> Errs:
    spec = obj.get("spec") or {}
    group = str(spec.get("group") or "")
    version = str(spec.get("version") or "")
    wanted = f"{version}.{group}"

    def name_rule(name: str, prefix: bool) -> list[str]:
        # The name is how clients address the group/version: it must spell it out.
        bad = path_segment_name(name, prefix)
        if bad:
            return bad
        return [] if name == wanted else [f'must be `spec.version+"."+spec.group`: {go_quote(wanted)}']

    errs = validate_object_meta(obj, False, name_rule)
    sp = "spec"
    if not group and version != "v1":
        errs.append(required(child(sp, "group"), "only v1 may have an empty group and it better be legacy kube"))
    if group:
        errs += [invalid(child(sp, "group"), group, m) for m in is_dns1123_subdomain(group)]
    errs += [invalid(child(sp, "version"), version, m) for m in is_dns1035_label(version)]
    gpm = _int(spec.get("groupPriorityMinimum"))
    if gpm <= 0 or gpm > 20000:
        errs.append(invalid(child(sp, "groupPriorityMinimum"), gpm, "must be positive and less than 20000"))
    vp = _int(spec.get("versionPriority"))
    if vp <= 0 or vp > 1000:
        errs.append(invalid(child(sp, "versionPriority"), vp, "must be positive and less than 1000"))
    ca = ca_bundle_bytes(spec)
    skip = bool(spec.get("insecureSkipTLSVerify"))
    svc = spec.get("service")
    if not isinstance(svc, dict):
        if ca:
            errs.append(invalid(child(sp, "caBundle"), f"{len(ca)} bytes", "local APIServices may not have a caBundle"))
        if skip:
            errs.append(invalid(child(sp, "insecureSkipTLSVerify"), skip,
                                "local APIServices may not have insecureSkipTLSVerify"))
        return errs
    if not svc.get("namespace"):
        errs.append(required(child(sp, "service", "namespace")))
    if not svc.get("name"):
        errs.append(required(child(sp, "service", "name")))
    if skip and ca:
        errs.append(invalid(child(sp, "insecureSkipTLSVerify"), skip, "may not be true if caBundle is present"))
    return errs


def validate_apiservice(obj: dict, old: dict | None) -> Errs:
    """ValidateAPIService on create, ValidateAPIServiceUpdate on update."""
    errs: Errs = [] if old is None else validate_object_meta_update(obj, old)
    return errs + _validate(obj)


def validate_apiservice_status(obj: dict, old: dict) -> Errs:
    """ValidateAPIServiceStatusUpdate: condition statuses are True, False or Unknown."""
    errs = validate_object_meta_update(obj, old)
    path = child("status", "conditions")
    for i, c in enumerate((obj.get("status") or {}).get("conditions") or []):
        st = (c or {}).get("status") if isinstance(c, dict) else None
        if st not in CONDITION_STATUSES:
            errs.append(not_supported(child(index(path, i), "status"), st or "", CONDITION_STATUSES))
    return errs
