"""The swagger 2.0 document as a gnostic ``openapi.v2.Document`` protobuf message.

kubectl 1.27/1.28 only accept the v2 document in this form.  There is no generated code:
the message is written field by field with the wire primitives of ``protowire``.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import orjson

from kubelite.api.protowire import FIXED64, VARINT, key, len_field, varint

Obj = dict[str, Any]


# Field numbers of gnostic-models openapiv2/OpenAPIv2.proto (package openapi.v2).  Only
# what a swagger document of ours contains is written; proto3 omits empty scalars.

def _s(number: int, value: Any) -> bytes:
    return len_field(number, str(value).encode()) if value not in (None, "") else b""


def _ss(number: int, values: Iterable[str]) -> bytes:
    return b"".join(len_field(number, v.encode()) for v in values)


def _b(number: int, value: Any) -> bytes:
    return key(number, VARINT) + b"\x01" if value else b""


def _i(number: int, value: Any) -> bytes:
    return key(number, VARINT) + varint(int(value)) if value else b""


def _d(number: int, value: Any) -> bytes:
    return key(number, FIXED64) + struct.pack("<d", float(value)) if value is not None else b""


def _m(number: int, data: bytes) -> bytes:
    return len_field(number, data)


def _any(value: Any) -> bytes:
    """openapi.v2.Any: the value as YAML text (JSON is YAML)."""
    return _s(2, orjson.dumps(value).decode())


def _vendor(number: int, obj: Obj) -> bytes:
    """NamedAny entries for the x- keys of obj."""
    return b"".join(_m(number, _s(1, k) + _m(2, _any(v))) for k, v in obj.items() if k.startswith("x-"))


def _schema_pb(s: Obj) -> bytes:
    out = [_s(1, s.get("$ref")), _s(2, s.get("format")), _s(3, s.get("title")),
           _s(4, s.get("description"))]
    if "default" in s:
        out.append(_m(5, _any(s["default"])))
    out += [_d(7, s.get("maximum")), _d(9, s.get("minimum")), _i(11, s.get("maxLength")),
            _i(12, s.get("minLength")), _s(13, s.get("pattern")), _i(14, s.get("maxItems")),
            _i(15, s.get("minItems")), _b(16, s.get("uniqueItems")), _ss(19, s.get("required", ()))]
    out += [_m(20, _any(e)) for e in s.get("enum", ())]
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        out.append(_m(21, _m(1, _schema_pb(ap))))
    elif isinstance(ap, bool):
        out.append(_m(21, key(2, VARINT) + (b"\x01" if ap else b"\x00")))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out.append(_m(22, _ss(1, types)))
    if "items" in s:
        items = s["items"] if isinstance(s["items"], list) else [s["items"]]
        out.append(_m(23, b"".join(_m(1, _schema_pb(i)) for i in items)))
    out += [_m(24, _schema_pb(a)) for a in s.get("allOf", ())]
    if "properties" in s:  # present even when empty: it makes the schema a struct
        out.append(_m(25, b"".join(_m(1, _s(1, k) + _m(2, _schema_pb(v)))
                                   for k, v in s["properties"].items())))
    out += [_b(27, s.get("readOnly")), _vendor(31, s)]
    return b"".join(out)


def _parameter_pb(p: Obj) -> bytes:
    """A ParametersItem: a $ref, a body parameter or a non-body (query/path/header) one."""
    if "$ref" in p:
        return _m(2, _s(1, p["$ref"]))
    if p["in"] == "body":
        body = (_s(1, p.get("description")) + _s(2, p["name"]) + _s(3, "body")
                + _b(4, p.get("required")) + _m(5, _schema_pb(p["schema"])) + _vendor(6, p))
        return _m(1, _m(1, body))
    head = _b(1, p.get("required")) + _s(2, p["in"]) + _s(3, p.get("description")) + _s(4, p["name"])
    if p["in"] in ("query", "formData"):  # Query/FormDataParameterSubSchema
        sub = (head + _b(5, p.get("allowEmptyValue")) + _s(6, p.get("type")) + _s(7, p.get("format"))
               + _b(20, p.get("uniqueItems")) + _vendor(23, p))
    else:                                 # Path/HeaderParameterSubSchema
        sub = (head + _s(5, p.get("type")) + _s(6, p.get("format"))
               + _b(19, p.get("uniqueItems")) + _vendor(22, p))
    which = {"header": 1, "formData": 2, "query": 3, "path": 4}[p["in"]]
    return _m(1, _m(2, _m(which, sub)))


def _operation_pb(op: Obj) -> bytes:
    responses = b"".join(
        _m(1, _s(1, code) + _m(2, _m(1, _s(1, r.get("description"))
                                     + (_m(2, _m(1, _schema_pb(r["schema"]))) if "schema" in r else b""))))
        for code, r in op.get("responses", {}).items())
    return b"".join([
        _ss(1, op.get("tags", ())), _s(2, op.get("summary")), _s(3, op.get("description")),
        _s(5, op.get("operationId")), _ss(6, op.get("produces", ())), _ss(7, op.get("consumes", ())),
        *(_m(8, _parameter_pb(p)) for p in op.get("parameters", ())),
        _m(9, responses), _ss(10, op.get("schemes", ())), _b(11, op.get("deprecated")),
        _vendor(13, op)])


_PATH_ITEM_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item_pb(item: Obj) -> bytes:
    out = [_m(n, _operation_pb(item[m])) for m, n in _PATH_ITEM_FIELDS.items() if m in item]
    out += [_m(9, _parameter_pb(p)) for p in item.get("parameters", ())]
    return b"".join(out) + _vendor(10, item)


def to_gnostic(doc: Obj) -> bytes:
    """Encode a swagger 2.0 JSON document as a gnostic ``openapi.v2.Document`` message."""
    info = doc.get("info", {})
    paths = b"".join(_m(2, _s(1, p) + _m(2, _path_item_pb(i))) for p, i in doc.get("paths", {}).items())
    definitions = b"".join(_m(1, _s(1, n) + _m(2, _schema_pb(s)))
                           for n, s in doc.get("definitions", {}).items())
    return b"".join([
        _s(1, doc.get("swagger")), _m(2, _s(1, info.get("title")) + _s(2, info.get("version"))),
        _s(3, doc.get("host")), _s(4, doc.get("basePath")), _ss(5, doc.get("schemes", ())),
        _ss(6, doc.get("consumes", ())), _ss(7, doc.get("produces", ())),
        _m(8, paths), _m(9, definitions), _vendor(16, doc)])
