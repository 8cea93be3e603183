"""Structural schemas: what a CRD's openAPIV3Schema means for the objects it describes.

Three passes run on every write of a custom resource, in upstream's order:

1. pruning (``unknown_fields`` reports, the caller drops): fields the schema does not
   specify are removed unless ``x-kubernetes-preserve-unknown-fields`` keeps them;
   ``apiVersion``, ``kind`` and ``metadata`` at the root (and in embedded resources)
   are always kept;
2. defaulting (``apply_defaults``): ``default`` values fill absent fields (also on every
   read from storage, as upstream, so a default added later shows on old objects);
3. validation (``validate``): the OpenAPI keywords, with the messages kube-openapi's
   validator writes, turned into field errors the way apiextensions-apiserver does
   (``spec.replicas: Invalid value: "string": spec.replicas in body must be of type
   integer: "string"``).

``structural_errors`` checks that a schema is structural when a CRD is written.
"""
from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import Iterator
from typing import Any

from kubelite.api.errors import Cause
from kubelite.api.typeddecode import Unknown
from kubelite.api.validation_common import go_quote

Obj = dict[str, Any]

_ROOT_KEEP = ("apiVersion", "kind", "metadata")


# --------------------------------------------------------------------------- pruning

def unknown_fields(obj: Obj, schema: Obj | None) -> list[Unknown]:
    """The fields of ``obj`` the schema does not specify (document order)."""
    out: list[Unknown] = []
    if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        # Still prune inside what the schema does specify.
        if schema is not None:
            _walk_object(obj, schema, "", out, root=True)
        return out
    _walk_object(obj, schema, "", out, root=True)
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(value: Any, schema: Obj, path: str, out: list[Unknown]) -> None:
    if isinstance(value, dict):
        _walk_object(value, schema, path, out, root=bool(schema.get("x-kubernetes-embedded-resource")))
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(value):
                _walk(v, items, f"{path}[{i}]", out)


def _walk_object(obj: Obj, schema: Obj, path: str, out: list[Unknown], *, root: bool) -> None:
    props = schema.get("properties")
    addl = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    for key in list(obj):
        if root and key in _ROOT_KEEP:
            if key == "metadata" and isinstance(obj[key], dict) and path:
                # Embedded metadata is pruned to what ObjectMeta knows; we keep it whole.
                pass
            continue
        if isinstance(props, dict) and key in props:
            sub = props[key]
            if isinstance(sub, dict):
                _walk(obj[key], sub, _join(path, key), out)
        elif isinstance(addl, dict):
            _walk(obj[key], addl, _join(path, key), out)
        elif addl is True or preserve:
            continue
        else:
            out.append(Unknown(_join(path, key), obj, key))


# --------------------------------------------------------------------------- defaulting

def apply_defaults(obj: Any, schema: Obj | None) -> None:
    """Fill absent fields with their schema defaults, in place (deepest last)."""
    if schema is None:
        return
    if isinstance(obj, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for key, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and key not in obj:
                    obj[key] = copy.deepcopy(sub["default"])
            for key, sub in props.items():
                if key in obj and isinstance(sub, dict):
                    apply_defaults(obj[key], sub)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for key in obj:
                if not (isinstance(props, dict) and key in props):
                    apply_defaults(obj[key], addl)
    elif isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for v in obj:
                apply_defaults(v, items)


# --------------------------------------------------------------------------- validation

def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _type_ok(v: Any, typ: str) -> bool:
    got = _json_type(v)
    if typ == "number":
        return got in ("integer", "number")
    if typ == "integer" and got == "number":
        return float(v).is_integer()
    return got == typ


def _num(v: float) -> str:
    """Go's %v of a float64 schema bound (1 rather than 1.0)."""
    if float(v).is_integer() and abs(v) < 1e21:
        return str(int(v))
    return repr(float(v))


def _go_value(v: Any) -> str:
    """The value part of a field error, as apimachinery prints it."""
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _num(v)
    if isinstance(v, int):
        return str(v)
    if v is None:
        return "null"
    import orjson
    return orjson.dumps(v).decode()


_FORMATS = {
    "int32", "int64", "float", "double", "byte", "date", "date-time", "duration", "uuid", "ipv4", "ipv6",
    "cidr", "mac", "hostname", "email", "uri", "password", "binary", "bsonobjectid", "uri-reference",
}
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DURATION = re.compile(r"^[-+]?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h|d|w))+$")


def _format_ok(v: str, fmt: str) -> bool:
    try:
        if fmt == "date-time":
            return bool(_DATE_TIME.match(v))
        if fmt == "date":
            dt.date.fromisoformat(v)
            return len(v) == 10
        if fmt == "uuid":
            uuid.UUID(v)
            return bool(re.fullmatch(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}", v))
        if fmt == "ipv4":
            ipaddress.IPv4Address(v)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(v)
        elif fmt == "cidr":
            ipaddress.ip_network(v, strict=False)
        elif fmt == "hostname":
            return bool(_HOSTNAME.match(v)) and len(v) <= 255
        elif fmt == "mac":
            return bool(_MAC.match(v))
        elif fmt == "duration":
            return bool(_DURATION.match(v))
        elif fmt == "email":
            return "@" in v and " " not in v
        elif fmt == "byte":
            import base64
            base64.b64decode(v, validate=True)
    except ValueError:
        return False
    return True


def validate(obj: Obj, schema: Obj | None) -> list[Cause]:
    """Field errors of ``obj`` against the version's schema ([] when valid)."""
    if schema is None:
        return []
    errs: list[Cause] = []
    _validate(obj, schema, "", errs, root=True)
    return errs


def _validate(v: Any, s: Obj, path: str, errs: list[Cause], *, root: bool = False) -> None:
    name = path or "."
    if v is None:
        if s.get("nullable"):
            return
        typ = s.get("type")
        if typ:
            errs.append(Cause("FieldValueTypeInvalid", f'Invalid value: "null": {name} in body must be of type '
                              f'{typ}: "null"', path))
        return
    if s.get("x-kubernetes-int-or-string"):
        if not isinstance(v, (int, str)) or isinstance(v, bool):
            errs.append(Cause("FieldValueTypeInvalid", f'Invalid value: "{_json_type(v)}": {name} in body must be '
                              f'of type integer,string: "{_json_type(v)}"', path))
            return
    else:
        typ = s.get("type")
        if typ and not _type_ok(v, typ):
            got = _json_type(v)
            errs.append(Cause("FieldValueTypeInvalid", f'Invalid value: "{got}": {name} in body must be of type '
                              f'{typ}: "{got}"', path))
            return
    enum = s.get("enum")
    if isinstance(enum, list) and v not in enum:
        shown = ", ".join(go_quote(e) if isinstance(e, str) else _go_value(e) for e in enum)
        errs.append(Cause("FieldValueNotSupported", f"Unsupported value: {_go_value(v)}: supported values: {shown}",
                          path))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        _numbers(v, s, path, name, errs)
    elif isinstance(v, str):
        _strings(v, s, path, name, errs)
    elif isinstance(v, list):
        _arrays(v, s, path, name, errs)
    elif isinstance(v, dict):
        _objects(v, s, path, name, errs, root=root)


def _numbers(v: float, s: Obj, path: str, name: str, errs: list[Cause]) -> None:
    mx, mn = s.get("maximum"), s.get("minimum")
    if mx is not None:
        if s.get("exclusiveMaximum") and v >= mx:
            errs.append(Cause("FieldValueInvalid", f"Invalid value: {_go_value(v)}: {name} in body should be less "
                              f"than {_num(mx)}", path))
        elif v > mx:
            errs.append(Cause("FieldValueInvalid", f"Invalid value: {_go_value(v)}: {name} in body should be less "
                              f"than or equal to {_num(mx)}", path))
    if mn is not None:
        if s.get("exclusiveMinimum") and v <= mn:
            errs.append(Cause("FieldValueInvalid", f"Invalid value: {_go_value(v)}: {name} in body should be greater "
                              f"than {_num(mn)}", path))
        elif v < mn:
            errs.append(Cause("FieldValueInvalid", f"Invalid value: {_go_value(v)}: {name} in body should be greater "
                              f"than or equal to {_num(mn)}", path))
    mult = s.get("multipleOf")
    if mult and (v / mult) != int(v / mult):
        errs.append(Cause("FieldValueInvalid", f"Invalid value: {_go_value(v)}: {name} in body should be a multiple "
                          f"of {_num(mult)}", path))


def _strings(v: str, s: Obj, path: str, name: str, errs: list[Cause]) -> None:
    mx, mn = s.get("maxLength"), s.get("minLength")
    length = len(v)  # characters, as go-openapi counts runes
    if mx is not None and length > mx:
        # apimachinery 1.32+ words TooLong this way (validation_common.too_long keeps the older words).
        errs.append(Cause("FieldValueTooLong", f"Too long: may not be more than {mx} bytes", path))
    if mn is not None and length < mn:
        errs.append(Cause("FieldValueInvalid", f"Invalid value: {go_quote(v)}: {name} in body should be at least "
                          f"{mn} chars long", path))
    pattern = s.get("pattern")
    if isinstance(pattern, str):
        try:
            ok = re.search(pattern, v) is not None
        except re.error:
            ok = True
        if not ok:
            errs.append(Cause("FieldValueInvalid", f"Invalid value: {go_quote(v)}: {name} in body should match "
                              f"'{pattern}'", path))
    fmt = s.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS and not _format_ok(v, fmt):
        errs.append(Cause("FieldValueTypeInvalid", f"Invalid value: {go_quote(v)}: {name} in body must be of type "
                          f"{fmt}: {go_quote(v)}", path))


def _arrays(v: list[Any], s: Obj, path: str, name: str, errs: list[Cause]) -> None:
    mx, mn = s.get("maxItems"), s.get("minItems")
    if mx is not None and len(v) > mx:
        errs.append(Cause("FieldValueTooMany", f"Too many: {len(v)}: must have at most {mx} items", path))
    if mn is not None and len(v) < mn:
        errs.append(Cause("FieldValueInvalid", f"Invalid value: {len(v)}: {name} in body should have at least "
                          f"{mn} items", path))
    list_type = s.get("x-kubernetes-list-type")
    if s.get("uniqueItems") or list_type == "set":
        seen: list[Any] = []
        for i, item in enumerate(v):
            if item in seen:
                errs.append(Cause("FieldValueDuplicate", f"Duplicate value: {_go_value(item)}", f"{path}[{i}]"))
            else:
                seen.append(item)
    if list_type == "map":
        keys = s.get("x-kubernetes-list-map-keys") or []
        seen_keys: list[tuple[Any, ...]] = []
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                continue
            k = tuple(item.get(key) for key in keys)
            if k in seen_keys:
                shown = "{" + ", ".join(f"{go_quote(key)}:{_go_value(item.get(key))}" for key in keys) + "}"
                errs.append(Cause("FieldValueDuplicate", f"Duplicate value: map[string]interface {{}}{shown}",
                                  f"{path}[{i}]"))
            else:
                seen_keys.append(k)
    items = s.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(v):
            _validate(item, items, f"{path}[{i}]", errs)


def _objects(v: Obj, s: Obj, path: str, name: str, errs: list[Cause], *, root: bool) -> None:
    for req in s.get("required") or []:
        if req not in v:
            errs.append(Cause("FieldValueRequired", "Required value", _join(path, req)))
    mx, mn = s.get("maxProperties"), s.get("minProperties")
    if mx is not None and len(v) > mx:
        errs.append(Cause("FieldValueTooMany", f"Too many: {len(v)}: must have at most {mx} items", path))
    if mn is not None and len(v) < mn:
        errs.append(Cause("FieldValueInvalid", f"Invalid value: {len(v)}: {name} in body should have at least "
                          f"{mn} properties", path))
    props_value = s.get("properties")
    props: Obj = props_value if isinstance(props_value, dict) else {}
    addl = s.get("additionalProperties")
    for key, val in v.items():
        if root and key == "metadata":
            continue
        sub = props.get(key)
        if isinstance(sub, dict):
            _validate(val, sub, _join(path, key), errs)
        elif isinstance(addl, dict):
            _validate(val, addl, _join(path, key), errs)
    if s.get("x-kubernetes-embedded-resource"):
        for key in ("apiVersion", "kind"):
            if not v.get(key):
                errs.append(Cause("FieldValueRequired", f"Required value: {key} must not be empty",
                                  _join(path, key)))


# --------------------------------------------------------------------------- structural check

def _children(s: Obj, path: str) -> Iterator[tuple[Obj, str, str]]:
    """(child schema, its field path, what it is: 'field' | 'items' | 'additional')."""
    props = s.get("properties")
    if isinstance(props, dict):
        for k, sub in props.items():
            if isinstance(sub, dict):
                yield sub, f"{path}.properties[{k}]", "field"
    items = s.get("items")
    if isinstance(items, dict):
        yield items, f"{path}.items", "items"
    addl = s.get("additionalProperties")
    if isinstance(addl, dict):
        yield addl, f"{path}.additionalProperties", "additional"


def structural_errors(schema: Obj, path: str, *, status_subresource: bool = False) -> list[Cause]:
    """Why a CRD version's openAPIV3Schema is not structural ([] when it is)."""
    errs: list[Cause] = []
    if schema.get("type") != "object":
        if not schema.get("type"):
            errs.append(Cause("FieldValueRequired", "Required value: must not be empty at the root", f"{path}.type"))
        else:
            errs.append(Cause("FieldValueInvalid", f"Invalid value: {go_quote(str(schema.get('type')))}: must be "
                              "object at the root", f"{path}.type"))
    if schema.get("nullable"):
        errs.append(Cause("FieldValueForbidden", "Forbidden: nullable cannot be true at the root", f"{path}.nullable"))
    _structural(schema, path, "root", errs)
    return errs


def _structural(s: Obj, path: str, what: str, errs: list[Cause]) -> None:
    typ = s.get("type")
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if not typ and not int_or_string and not preserve and what != "root":
        detail = "must not be empty for specified array items" if what == "items" else \
            "must not be empty for specified object fields"
        errs.append(Cause("FieldValueRequired", f"Required value: {detail}", f"{path}.type"))
    if typ == "array" and not isinstance(s.get("items"), dict):
        errs.append(Cause("FieldValueRequired", "Required value: must be specified", f"{path}.items"))
    if s.get("uniqueItems"):
        errs.append(Cause("FieldValueForbidden", "Forbidden: uniqueItems cannot be set to true since the runtime "
                          "complexity becomes quadratic", f"{path}.uniqueItems"))
    if isinstance(s.get("properties"), dict) and s.get("properties") and isinstance(s.get("additionalProperties"),
                                                                                  (dict, bool)) \
            and s.get("additionalProperties") is not False:
        errs.append(Cause("FieldValueForbidden", "Forbidden: additionalProperties and properties are mutual "
                          "exclusive", f"{path}.additionalProperties"))
    for key in ("$ref", "definitions", "dependencies", "patternProperties", "additionalItems", "id"):
        if key in s:
            errs.append(Cause("FieldValueForbidden", f"Forbidden: {key} is not supported", f"{path}.{key}"))
    lt = s.get("x-kubernetes-list-type")
    if lt is not None and typ != "array":
        errs.append(Cause("FieldValueInvalid" if typ else "FieldValueRequired",
                          (f"Invalid value: {go_quote(str(typ))}: " if typ else "Required value: ")
                          + "must be array if x-kubernetes-list-type is specified", f"{path}.type"))
    if lt == "map" and not s.get("x-kubernetes-list-map-keys"):
        errs.append(Cause("FieldValueRequired", "Required value: must not be empty if x-kubernetes-list-type is map",
                          f"{path}.x-kubernetes-list-map-keys"))
    if s.get("x-kubernetes-embedded-resource") and typ != "object":
        errs.append(Cause("FieldValueRequired" if not typ else "FieldValueInvalid",
                          ("Required value: " if not typ else f"Invalid value: {go_quote(str(typ))}: ")
                          + "must be object if x-kubernetes-embedded-resource is true", f"{path}.type"))
    for child, cpath, cwhat in _children(s, path):
        _structural(child, cpath, cwhat, errs)
