"""Defaulting and validation of CustomResourceDefinition objects (apiextensions.k8s.io/v1).

Messages and field paths are upstream's (``pkg/apis/apiextensions/validation``) for the
mistakes people make: a name that is not ``<plural>.<group>``, missing names, no or two
storage versions, a missing or non-structural schema, bad printer columns.  Go renders
some invalid values as struct dumps; we print the same words around a shorter value.
"""
from __future__ import annotations

from typing import Any

from kubelite.api.errors import Cause
from kubelite.api.validation_common import (
    GoRepr,
    child,
    forbidden,
    go_quote,
    go_string_slice,
    invalid,
    is_dns1035_label,
    is_dns1123_subdomain,
    not_supported,
    required,
)
from kubelite.api.validation_webhooks import validate_client_config
from kubelite.apiextensions.cel import compile_errors
from kubelite.apiextensions.schema import structural_errors

Obj = dict[str, Any]

_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "name", "password")


def _dict(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def _go_versions(versions: list[Any]) -> GoRepr:
    """A short Go-like rendering of spec.versions for the messages about the whole list."""
    parts = []
    for v in versions:
        if isinstance(v, dict):
            parts.append(f"apiextensions.CustomResourceDefinitionVersion{{Name:{go_quote(str(v.get('name') or ''))}, "
                         f"Served:{str(bool(v.get('served'))).lower()}, Storage:{str(bool(v.get('storage'))).lower()}}}")
    return GoRepr("[]apiextensions.CustomResourceDefinitionVersion{" + ", ".join(parts) + "}")


def apply_defaults(crd: Obj) -> None:
    """The v1 defaults: names.singular and listKind, conversion None, served flags."""
    spec = crd.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = names.get("kind") or ""
        if not names.get("singular") and kind:
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    conv = spec.setdefault("conversion", {"strategy": "None"})
    if isinstance(conv, dict) and not conv.get("strategy"):
        conv["strategy"] = "None"


def validate(crd: Obj, old: Obj | None) -> list[Cause]:
    """Causes for an invalid CRD ([] when valid)."""
    spec = _dict(crd.get("spec"))
    names = _dict(spec.get("names"))
    group = str(spec.get("group") or "")
    plural = str(names.get("plural") or "")

    # The rest of metadata is validated for every kind (``api.validation``).
    md = crd.get("metadata") or {}
    name = str(md.get("name") or "")
    errs = []
    if name and name != f"{plural}.{group}":
        errs.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    errs += _validate_spec(spec, "spec", old)
    return errs


def _validate_spec(spec: Obj, path: str, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    group = spec.get("group") or ""
    if not group:
        errs.append(required(child(path, "group")))
    else:
        bad = is_dns1123_subdomain(group)
        if bad:
            errs.append(invalid(child(path, "group"), group, ",".join(bad)))
        elif "." not in group:
            errs.append(invalid(child(path, "group"), group, "should be a domain with at least one dot"))
    scope = spec.get("scope")
    if not scope:
        errs.append(required(child(path, "scope")))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported(child(path, "scope"), scope, ("Cluster", "Namespaced")))
    errs += _validate_names(_dict(spec.get("names")), child(path, "names"))
    errs += _validate_versions(spec, path)
    errs += _validate_conversion(spec.get("conversion"), child(path, "conversion"))
    if old is not None:
        ospec = old.get("spec") or {}
        if ospec.get("group") and spec.get("group") != ospec.get("group"):
            errs.append(invalid(child(path, "group"), group, "field is immutable"))
        if ospec.get("scope") and spec.get("scope") != ospec.get("scope"):
            errs.append(invalid(child(path, "scope"), scope, "field is immutable"))
    return errs


def _validate_conversion(conv: Any, path: str) -> list[Cause]:
    """validateCustomResourceConversion; paths name upstream's internal fields
    (``webhookClientConfig``), as its messages do."""
    if not isinstance(conv, dict):
        return []
    errs: list[Cause] = []
    strategy = conv.get("strategy") or ""
    if strategy not in ("None", "Webhook"):
        errs.append(not_supported(child(path, "strategy"), strategy, ("None", "Webhook")))
    hook = conv.get("webhook") if isinstance(conv.get("webhook"), dict) else None
    cc = hook.get("clientConfig") if hook is not None else None
    versions = (hook or {}).get("conversionReviewVersions") or []
    if strategy == "Webhook":
        if not isinstance(cc, dict):
            errs.append(required(child(path, "webhookClientConfig"), "required when strategy is set to Webhook"))
        else:
            errs += validate_client_config(cc, child(path, "webhookClientConfig"))
        vpath = child(path, "conversionReviewVersions")
        if not versions:
            errs.append(required(vpath))
        seen: set[str] = set()
        for i, v in enumerate(versions):
            if v in seen:
                errs.append(invalid(f"{vpath}[{i}]", v, "duplicate version"))
                continue
            seen.add(str(v))
            errs += [invalid(f"{vpath}[{i}]", v, m) for m in is_dns1035_label(str(v))]
        if versions and not seen & {"v1", "v1beta1"}:
            errs.append(invalid(vpath, GoRepr(go_string_slice(list(versions))),
                                "must include at least one of v1, v1beta1"))
    else:
        if cc is not None:
            errs.append(forbidden(child(path, "webhookClientConfig"), "should not be set when strategy is not set "
                                  "to Webhook"))
        if versions:
            errs.append(forbidden(child(path, "conversionReviewVersions"), "should not be set when strategy is not "
                                  "set to Webhook"))
    return errs


def _validate_names(names: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    plural, singular = names.get("plural") or "", names.get("singular") or ""
    kind, list_kind = names.get("kind") or "", names.get("listKind") or ""
    for field, value in (("plural", plural), ("singular", singular), ("kind", kind), ("listKind", list_kind)):
        if not value:
            errs.append(required(child(path, field)))
    for field, value in (("plural", plural), ("singular", singular)):
        bad = is_dns1035_label(value) if value else []
        if bad:
            errs.append(invalid(child(path, field), value, ",".join(bad)))
    for field, value in (("kind", kind), ("listKind", list_kind)):
        bad = is_dns1035_label(value.lower()) if value else []
        if bad:
            errs.append(invalid(child(path, field), value, "may have mixed case, but should otherwise match: "
                                + ",".join(bad)))
    for i, short in enumerate(names.get("shortNames") or []):
        bad = is_dns1035_label(str(short))
        if bad:
            errs.append(invalid(f"{path}.shortNames[{i}]", short, ",".join(bad)))
    if kind and kind == list_kind:
        errs.append(invalid(child(path, "listKind"), list_kind, "kind and listKind may not be the same"))
    for i, cat in enumerate(names.get("categories") or []):
        bad = is_dns1035_label(str(cat))
        if bad:
            errs.append(invalid(f"{path}.categories[{i}]", cat, ",".join(bad)))
    return errs


def _validate_versions(spec: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    versions = spec.get("versions")
    vpath = child(path, "versions")
    if not isinstance(versions, list) or not versions:
        return [required(vpath)]
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage"))
    names = [v.get("name") for v in versions if isinstance(v, dict)]
    if len(set(names)) != len(names):
        errs.append(invalid(vpath, _go_versions(versions), "must contain unique version names"))
    if storage != 1:
        errs.append(invalid(vpath, _go_versions(versions), "must have exactly one version marked as storage version"))
    for i, v in enumerate(versions):
        if not isinstance(v, dict):
            continue
        ipath = f"{vpath}[{i}]"
        name = v.get("name") or ""
        if not name:
            errs.append(required(child(ipath, "name")))
        else:
            bad = is_dns1035_label(name)
            if bad:
                errs.append(invalid(child(ipath, "name"), name, ",".join(bad)))
        schema = (v.get("schema") or {}).get("openAPIV3Schema") if isinstance(v.get("schema"), dict) else None
        spath = child(ipath, "schema", "openAPIV3Schema")
        if not isinstance(schema, dict):
            errs.append(required(spath))
        else:
            errs += structural_errors(schema, spath) + compile_errors(schema, spath)
            subs = v.get("subresources") or {}
            if "status" in subs and schema.get("type") == "object":
                extra = sorted(set(schema) - {"description", "type", "required", "properties",
                                              "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
                                              "x-kubernetes-embedded-resource", "nullable", "title"})
                if extra:
                    errs.append(Cause("FieldValueInvalid", "Invalid value: \"\": only description, type, required, "
                                      "properties, x-kubernetes-preserve-unknown-fields and x-kubernetes-validations "
                                      "fields are allowed at the root of the schema if the status subresource is "
                                      "enabled", spath))
        errs += _validate_columns(v.get("additionalPrinterColumns") or [], child(ipath, "additionalPrinterColumns"))
        scale = (v.get("subresources") or {}).get("scale")
        if isinstance(scale, dict):
            spath2 = child(ipath, "subresources", "scale")
            for field in ("specReplicasPath", "statusReplicasPath"):
                p = scale.get(field) or ""
                if not p:
                    errs.append(required(child(spath2, field)))
                elif not p.startswith("."):
                    errs.append(invalid(child(spath2, field), p, "should be a json path under .spec" if
                                        field == "specReplicasPath" else "should be a json path under .status"))
    return errs


def _validate_columns(cols: list[Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, col in enumerate(cols):
        if not isinstance(col, dict):
            continue
        cpath = f"{path}[{i}]"
        if not col.get("name"):
            errs.append(required(child(cpath, "name")))
        typ = col.get("type")
        if not typ:
            errs.append(required(child(cpath, "type"), "must be one of " + ",".join(_COLUMN_TYPES)))
        elif typ not in _COLUMN_TYPES:
            errs.append(invalid(child(cpath, "type"), typ, "must be one of " + ",".join(_COLUMN_TYPES)))
        fmt = col.get("format")
        if fmt and fmt not in _COLUMN_FORMATS:
            errs.append(invalid(child(cpath, "format"), fmt, "must be one of " + ",".join(_COLUMN_FORMATS)))
        if not col.get("jsonPath"):
            errs.append(required(child(cpath, "JSONPath")))
    return errs

