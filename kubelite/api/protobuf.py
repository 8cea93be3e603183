"""The Kubernetes protobuf wire format (``application/vnd.kubernetes.protobuf``).

kubectl 1.32+ sends typed create/update bodies as protobuf.  A body is the 4-byte magic
``k8s\\x00`` followed by a ``runtime.Unknown`` envelope whose ``typeMeta`` names the kind
and whose ``raw`` holds the object message.  We decode it with the wire primitives of
``protowire``, driven by the schema data in ``protoschema``, into exactly the dict that the same Go
struct would have produced as JSON, so the rest of the server sees one shape.

Reproducing Go's JSON is what makes the result lossless *and* identical to what a JSON
client sends: Go's protobuf writes every non-pointer field even when zero, and pointer
fields only when set; Go's JSON then drops zero values of ``omitempty`` fields, writes
``null`` for nil slices/pointers without ``omitempty``, always writes structs, and keeps
a set pointer's zero (``replicas: 0``).  The schema carries those Go facts per field.

``encode`` is the reverse for answering protobuf-preferring clients; anything the schema
cannot represent raises ``Unsupported`` so the caller can answer in JSON instead.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
import struct
from typing import Any

import orjson

from kubelite.api import errors
from kubelite.api import protoschema as schema
from kubelite.api import protowire as pw
from kubelite.api.protoschema import Field, Message
from kubelite.api.protowire import FIXED32, FIXED64, LEN, VARINT, Malformed, iter_fields, read_varint

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_MAX_DEPTH = 64
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


class Unsupported(ValueError):
    """The object cannot be encoded as protobuf with our schema; answer in JSON instead."""


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(code: str, wire: int, value: Any) -> Any:
    """One scalar from its wire value, as Go would hold it."""
    if code in ("i32", "i64", "b"):
        if wire != VARINT:
            raise Malformed(f"expected a varint, got wire type {wire}")
        if code == "b":
            return value != 0
        return _signed(value, 32 if code == "i32" else 64)
    if code == "f64":
        if wire != FIXED64:
            raise Malformed(f"expected fixed64, got wire type {wire}")
        return struct.unpack("<d", value)[0]
    if code == "f32":
        if wire != FIXED32:
            raise Malformed(f"expected fixed32, got wire type {wire}")
        return struct.unpack("<f", value)[0]
    if wire != LEN:
        raise Malformed(f"expected length-delimited data, got wire type {wire}")
    if code == "s":
        return value.decode("utf-8", "replace")  # Go's JSON also replaces bad UTF-8
    return bytes(value)  # "y"


def _packed(code: str, data: bytes) -> list[Any]:
    """Elements of a packed repeated numeric field (accepted though Go never packs)."""
    out: list[Any] = []
    pos = 0
    if code in ("f64", "f32"):
        size, fmt = (8, "<d") if code == "f64" else (4, "<f")
        if len(data) % size:
            raise Malformed("packed field has a partial element")
        return [struct.unpack(fmt, data[i:i + size])[0] for i in range(0, len(data), size)]
    while pos < len(data):
        v, pos = read_varint(data, pos)
        out.append(_scalar(code, VARINT, v))
    return out


# --------------------------------------------------------------------------- decode

def decode(body: bytes, default: tuple[str, str] | None = None) -> dict[str, Any]:
    """Decode a protobuf request body into the dict its JSON form would be; ``default``
    (apiVersion, kind) fills in an envelope that names none, as upstream's decoder does."""
    try:
        return _decode_body(body, 0, default)
    except (Malformed, ValueError, OverflowError, struct.error) as e:
        # orjson.JSONDecodeError (embedded raw JSON) is a ValueError too.
        raise errors.bad_request(f"unable to decode protobuf body: {e}") from None
    except RecursionError:
        raise errors.bad_request("unable to decode protobuf body: objects nested too deeply") from None


def _decode_body(body: bytes, depth: int, default: tuple[str, str] | None = None) -> dict[str, Any]:
    """decode() without the error translation; depth counts nested embedded objects."""
    if depth > _MAX_DEPTH:
        raise Malformed("objects nested too deeply")
    api_version, kind, raw, content_type = _envelope(body)
    if default is not None:
        kind = kind or default[1]
        api_version = api_version or default[0]
    if content_type and content_type != MEDIA_TYPE and "json" in content_type:
        embedded = orjson.loads(raw)
        if not isinstance(embedded, dict):
            raise Malformed("embedded JSON is not an object")
        return embedded
    name = schema.kind_message(api_version, kind)
    if name is None:
        raise errors.status_error(
            415, "UnsupportedMediaType",
            f"protobuf bodies of {kind or '<no kind>'} ({api_version or '<no apiVersion>'}) "
            f"are not supported; send application/json")
    obj: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    obj.update(_decode_message(raw, name, depth))
    return obj


def _envelope(body: bytes) -> tuple[str, str, bytes, str]:
    """Strip the magic and read runtime.Unknown: (apiVersion, kind, raw, contentType)."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise Malformed("body is not bytes")
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise Malformed("missing the k8s\\x00 prefix")
    api_version = kind = content_type = ""
    raw = b""
    for number, wire, value in iter_fields(body[len(MAGIC):]):
        if number == 1:  # typeMeta
            for n, w, v in iter_fields(_expect_len(wire, value)):
                if n == 1:
                    api_version = _scalar("s", w, v)
                elif n == 2:
                    kind = _scalar("s", w, v)
        elif number == 2:
            raw = _expect_len(wire, value)
        elif number == 4:
            content_type = _scalar("s", wire, value)
    return api_version, kind, raw, content_type


def _expect_len(wire: int, value: Any) -> bytes:
    if wire != LEN:
        raise Malformed(f"expected an embedded message, got wire type {wire}")
    return value


def _decode_message(buf: bytes, name: str, depth: int) -> Any:
    """A message as Go's JSON would write the struct it unmarshals into."""
    if depth > _MAX_DEPTH:
        raise Malformed("messages nested too deeply")
    if name in schema.SPECIAL:
        return _decode_special(buf, name, depth)
    msg = schema.message(name)
    if msg is None:  # cannot happen with consistent schema data
        raise Malformed(f"no schema for {name}")
    values: dict[int, Any] = {}
    for number, wire, value in iter_fields(buf):
        field = msg.by_number.get(number)
        if field is None:
            continue  # unknown fields are skipped, as Go's generated code does
        if field.map:
            key, item = _map_entry(_expect_len(wire, value), field, depth)
            values.setdefault(number, {})[key] = item
        elif field.repeated:
            items = values.setdefault(number, [])
            if field.type in schema.SCALARS and field.type not in ("s", "y") and wire == LEN:
                items.extend(_packed(field.type, _expect_len(wire, value)))
            else:
                items.append(_field_value(field, wire, value, depth))
        else:
            values[number] = _field_value(field, wire, value, depth)
    if msg.wrapper:
        return values.get(msg.fields[0].number)
    out: dict[str, Any] = {}
    for field in msg.fields:
        _emit(out, field, values.get(field.number, _ABSENT), depth)
    return out


_ABSENT = object()


def _field_value(field: Field, wire: int, value: Any, depth: int) -> Any:
    if field.type in schema.SCALARS:
        v = _scalar(field.type, wire, value)
        return base64.b64encode(v).decode() if field.type == "y" else v
    return _decode_message(_expect_len(wire, value), field.type, depth + 1)


def _map_entry(buf: bytes, field: Field, depth: int) -> tuple[str, Any]:
    key, item = "", _ABSENT
    for n, w, v in iter_fields(buf):
        if n == 1:
            key = _scalar("s", w, v)
        elif n == 2:
            item = _field_value(field, w, v, depth)
    if item is _ABSENT:  # a missing value is the zero value
        item = _zero(field)
    return key, item


def _zero(field: Field) -> Any:
    """The JSON of a Go zero value of the field's (non-pointer, single) type."""
    t = field.type
    if t == "s":
        return ""
    if t in ("i32", "i64"):
        return 0
    if t in ("f64", "f32"):
        return 0.0
    if t == "b":
        return False
    if t == "y":
        return ""  # a map value of empty bytes
    return _decode_message(b"", t, 0)


def _emit(out: dict[str, Any], field: Field, value: Any, depth: int) -> None:
    """Put one field into the JSON dict following encoding/json's rules."""
    if field.inline:
        sub = value if value is not _ABSENT else _decode_message(b"", field.type, depth + 1)
        if isinstance(sub, dict):
            out.update(sub)
        return
    if value is _ABSENT:
        if field.pointer or field.repeated or field.map or field.type == "y":
            if field.always:
                out[field.name] = None  # nil without omitempty
            return
        value = _zero(field)
    if field.pointer or field.repeated or field.map:
        out[field.name] = value
    elif field.type in schema.SCALARS:
        if field.always or value:  # "", 0, 0.0 and false are omitempty's "empty"
            out[field.name] = value
    else:
        out[field.name] = value  # structs are never omitted


# --------------------------------------------------------------------------- special types

def _fields_of(buf: bytes) -> dict[int, tuple[int, Any]]:
    return {n: (w, v) for n, w, v in iter_fields(buf)}


def _decode_special(buf: bytes, name: str, depth: int) -> Any:
    f = _fields_of(buf)

    def get(n: int, code: str, default: Any) -> Any:
        return _scalar(code, *f[n]) if n in f else default

    if name == "meta.v1.Time":
        if not buf:
            return None  # zero time, marshalled as null
        return _format_time(get(1, "i64", 0), 0)  # Go drops nanos of metav1.Time
    if name == "meta.v1.MicroTime":
        if not buf:
            return None
        return _format_time(get(1, "i64", 0), get(2, "i32", 0) // 1000 * 1000, micro=True)
    if name == "meta.v1.Duration":
        return _format_duration(get(1, "i64", 0))
    if name == "intstr.IntOrString":
        if get(1, "i64", 0) == 1:
            return get(3, "s", "")
        return get(2, "i32", 0)
    if name == "resource.Quantity":
        return get(1, "s", "") or "0"
    # RawExtension and FieldsV1 hold raw JSON (or a nested protobuf object).
    raw = get(1, "y", b"")
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return _decode_body(raw, depth + 1)
    return orjson.loads(raw)


def _format_time(seconds: int, nanos: int, micro: bool = False) -> str:
    try:
        t = _EPOCH + _dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise Malformed(f"timestamp {seconds} out of range") from None
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return f"{text}.{t.microsecond:06d}Z" if micro else f"{text}Z"


def _format_duration(ns: int) -> str:
    """Go's time.Duration.String(): 1h2m3.5s, 1.5ms, 0s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns, size) + unit
    h, rest = divmod(ns, 3_600_000_000_000)
    m, rest = divmod(rest, 60_000_000_000)
    secs = _trim(rest, 1_000_000_000) + "s"
    if h:
        return f"{sign}{h}h{m}m{secs}"
    if m:
        return f"{sign}{m}m{secs}"
    return sign + secs


def _trim(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


# --------------------------------------------------------------------------- encode

def encode(obj: dict[str, Any]) -> bytes:
    """Encode a JSON-shaped object as a protobuf body (magic + runtime.Unknown)."""
    if not isinstance(obj, dict):
        raise Unsupported("only objects can be encoded")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise Unsupported("object has no apiVersion/kind")
    name = schema.kind_message(api_version, kind)
    if name is None:
        raise Unsupported(f"no protobuf schema for {api_version}, Kind={kind}")
    try:
        raw = _encode_message(obj, name, "")
    except (TypeError, OverflowError, struct.error) as e:  # orjson.JSONEncodeError is a TypeError
        raise Unsupported(f"cannot encode {kind} as protobuf: {e}") from None
    type_meta = pw.len_field(1, api_version.encode()) + pw.len_field(2, kind.encode())
    envelope = pw.len_field(1, type_meta) + pw.len_field(2, raw) + pw.len_field(3, b"") + pw.len_field(4, b"")
    return MAGIC + envelope


def _encode_message(value: Any, name: str, path: str) -> bytes:
    if name in schema.SPECIAL:
        return _encode_special(value, name, path)
    msg = schema.message(name)
    if msg is None:
        raise Unsupported(f"no protobuf schema for {name}")
    if msg.wrapper:
        field = msg.fields[0]
        return _encode_field(field, value, path)
    if not isinstance(value, dict):
        raise Unsupported(f"{path or '<root>'}: expected an object")
    parts: dict[int, bytes] = {}
    for field, sub in _assign(msg, value, path).items():
        if field.inline:
            parts[field.number] = pw.len_field(field.number, _encode_message(sub, field.type, path))
        elif sub is not None:
            parts[field.number] = _encode_field(field, sub, _join(path, field.name))
    return b"".join(parts[n] for n in sorted(parts))


def _assign(msg: Message, value: dict[str, Any], path: str) -> dict[Field, Any]:
    """Map JSON keys to fields; keys of inlined structs are gathered into a sub-dict."""
    direct = {f.name: f for f in msg.fields if not f.inline}
    inlines = [f for f in msg.fields if f.inline]
    out: dict[Field, Any] = {}
    for key, sub in value.items():
        if key in direct:
            out[direct[key]] = sub
            continue
        if msg.is_kind and key in ("apiVersion", "kind"):
            continue  # TypeMeta is not part of the protobuf message
        for f in inlines:
            if key in _json_keys(f.type):
                out.setdefault(f, {})[key] = sub
                break
        else:
            raise Unsupported(f"field {_join(path, key)!r} is not in the protobuf schema of {msg.name}")
    return out


def _json_keys(name: str) -> frozenset[str]:
    msg = schema.message(name)
    if msg is None:
        return frozenset()
    keys: set[str] = set()
    for f in msg.fields:
        keys |= _json_keys(f.type) if f.inline else {f.name}
    return frozenset(keys)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _encode_field(field: Field, value: Any, path: str) -> bytes:
    if field.map:
        if not isinstance(value, dict):
            raise Unsupported(f"{path}: expected a map")
        out = bytearray()
        for k, v in value.items():
            if not isinstance(k, str):
                raise Unsupported(f"{path}: map keys must be strings")
            out += pw.len_field(field.number, pw.len_field(1, k.encode()) + _encode_one(field, 2, v, f"{path}[{k}]"))
        return bytes(out)
    if field.repeated:
        if not isinstance(value, list):
            raise Unsupported(f"{path}: expected a list")
        return b"".join(_encode_one(field, field.number, v, f"{path}[{i}]") for i, v in enumerate(value))
    return _encode_one(field, field.number, value, path)


def _encode_one(field: Field, number: int, value: Any, path: str) -> bytes:
    t = field.type
    if value is None and t not in schema.SCALARS:
        value = {} if t not in schema.SPECIAL else None
    if t == "s":
        if not isinstance(value, str):
            raise Unsupported(f"{path}: expected a string")
        return pw.len_field(number, value.encode())
    if t in ("i32", "i64"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unsupported(f"{path}: expected an integer")
        bits = 32 if t == "i32" else 64
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise Unsupported(f"{path}: {value} does not fit in an int{bits}")
        return pw.key(number, VARINT) + pw.varint(value)
    if t == "b":
        if not isinstance(value, bool):
            raise Unsupported(f"{path}: expected a boolean")
        return pw.key(number, VARINT) + pw.varint(int(value))
    if t in ("f64", "f32"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Unsupported(f"{path}: expected a number")
        if t == "f64":
            return pw.key(number, FIXED64) + struct.pack("<d", value)
        return pw.key(number, FIXED32) + struct.pack("<f", value)
    if t == "y":
        if not isinstance(value, str):
            raise Unsupported(f"{path}: expected base64 data")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise Unsupported(f"{path}: invalid base64 data") from None
        return pw.len_field(number, data)
    return pw.len_field(number, _encode_message(value, t, path))


_TIME_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$")


def _parse_time(value: Any, path: str) -> tuple[int, int]:
    m = _TIME_RE.match(value) if isinstance(value, str) else None
    if not m:
        raise Unsupported(f"{path}: not an RFC3339 time: {value!r}")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    offset = _dt.timedelta(0)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset = sign * _dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        t = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=_dt.timezone(offset))
    except ValueError:
        raise Unsupported(f"{path}: not an RFC3339 time: {value!r}") from None
    delta = t - _EPOCH
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return delta.days * 86400 + delta.seconds, nanos


_DURATION_RE = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def _parse_duration(value: Any, path: str) -> int:
    if not isinstance(value, str):
        raise Unsupported(f"{path}: not a duration: {value!r}")
    sign, text = (-1, value[1:]) if value.startswith("-") else (1, value.lstrip("+"))
    if text == "0":
        return 0
    pos, total = 0, 0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += round(float(m.group(1)) * _DURATION_UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise Unsupported(f"{path}: not a duration: {value!r}")
    return sign * total


def _encode_special(value: Any, name: str, path: str) -> bytes:
    if name in ("meta.v1.Time", "meta.v1.MicroTime"):
        if value is None:
            return b""
        seconds, nanos = _parse_time(value, path)
        if name == "meta.v1.Time":
            nanos = 0
        return pw.key(1, VARINT) + pw.varint(seconds) + pw.key(2, VARINT) + pw.varint(nanos // 1000 * 1000)
    if name == "meta.v1.Duration":
        return pw.key(1, VARINT) + pw.varint(_parse_duration(value, path))
    if name == "intstr.IntOrString":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise Unsupported(f"{path}: expected an int or a string")
        if isinstance(value, int):
            return pw.key(1, VARINT) + pw.varint(0) + pw.key(2, VARINT) + pw.varint(value) + pw.len_field(3, b"")
        return pw.key(1, VARINT) + pw.varint(1) + pw.key(2, VARINT) + pw.varint(0) + pw.len_field(3, value.encode())
    if name == "resource.Quantity":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise Unsupported(f"{path}: expected a quantity")
        text = value if isinstance(value, str) else (str(int(value)) if float(value).is_integer() else repr(value))
        return pw.len_field(1, text.encode())
    # RawExtension / FieldsV1: raw JSON bytes.
    if value is None:
        return b""
    return pw.len_field(1, orjson.dumps(value))


# --------------------------------------------------------------------------- strict fields

def unknown_fields(obj: dict[str, Any]) -> list[str]:
    """Dotted paths of fields the object's kind does not define (fieldValidation=Strict)."""
    if not isinstance(obj, dict):
        return []
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return []
    name = schema.kind_message(api_version, kind)
    if name is None:
        return []
    found: list[str] = []
    _walk_unknown(obj, name, "", found, top=True)
    return found


def _walk_unknown(value: Any, name: str, path: str, found: list[str], top: bool = False) -> None:
    if name in schema.SPECIAL or not isinstance(value, (dict, list)):
        return  # scalars and raw JSON are free-form here
    msg = schema.message(name)
    if msg is None:
        return
    if msg.wrapper:
        return
    if not isinstance(value, dict):
        return
    fields = _json_fields(name)
    for key, sub in value.items():
        field = fields.get(key)
        if field is None:
            if (top or msg.is_kind) and key in ("apiVersion", "kind"):
                continue
            found.append(_join(path, key))
            continue
        here = _join(path, key)
        if field.type in schema.SCALARS or sub is None:
            continue
        if field.map and isinstance(sub, dict):
            for k, v in sub.items():
                _walk_unknown(v, field.type, f"{here}.{k}", found)
        elif field.repeated and isinstance(sub, list):
            for i, v in enumerate(sub):
                _walk_unknown(v, field.type, f"{here}[{i}]", found)
        elif not field.map and not field.repeated:
            _walk_unknown(sub, field.type, here, found)


def _json_fields(name: str) -> dict[str, Field]:
    """JSON key -> field, with inlined structs' fields lifted into the parent."""
    cached = _JSON_FIELDS.get(name)
    if cached is not None:
        return cached
    msg = schema.message(name)
    out: dict[str, Field] = {}
    for f in msg.fields if msg else ():
        if f.inline:
            out.update(_json_fields(f.type))
        else:
            out[f.name] = f
    _JSON_FIELDS[name] = out
    return out


_JSON_FIELDS: dict[str, dict[str, Field]] = {}
