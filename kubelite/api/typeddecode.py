"""Typed decoding: a request object checked against its kind's Go types before anything else.

kube-apiserver decodes every body (JSON, YAML turned into JSON, protobuf) into the kind's
Go struct, so a value of the wrong JSON type never reaches defaulting, validation or
storage: ``"replicas": "3"``, a label value ``1``, ``metadata: "x"``, 2^40 for an int32,
non-base64 Secret data, ``immutable: "yes"`` are all refused with the decoder's words.
kubelite keeps objects as plain dicts, so this module walks the decoded dict with the
schema table of ``protoschema`` (the same data that drives the protobuf codec) and:

* raises :class:`TypeMismatch` for the first value, in document order, that the Go
  decoder would refuse, carrying what the callers need to word it as upstream does for
  each path (a 400 decode error for bodies, a 422 ``patch`` error for patch results,
  a server-side-apply conversion error for apply bodies);
* normalises ``null`` the way decoding into Go and encoding again would: a null scalar
  is dropped (or becomes its zero value where Go always writes it), a null struct
  becomes ``{}``, a null string-map value becomes ``""``;
* returns the paths of the fields the schema does not know (for ``fieldValidation``),
  so one walk serves both typed decoding and strict field checking.

Values the schema leaves free-form (``RawExtension``, ``FieldsV1``) and unknown fields
are not typed, but their nesting is bounded (:data:`MAX_DEPTH`), as nothing the server
does afterwards (copying, patching, encoding) may recurse without limit on client data.
"""
from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from kubelite.api import protoschema as schema
from kubelite.api.validation_common import go_quote

# Deepest nesting accepted anywhere in a request object.  Real objects stay below 30
# levels; the bound keeps recursion in copies, patches and encoders well inside Python's
# stack and orjson's nesting limit (255), which responses wrap in a few more levels.
MAX_DEPTH = 100

_INT_BITS = {"i32": 32, "i64": 64}
_GO_SCALAR = {"s": "string", "i32": "int32", "i64": "int64", "b": "bool", "f64": "float64",
              "f32": "float32", "y": "[]uint8"}
_ZERO: dict[str, Any] = {"s": "", "i32": 0, "i64": 0, "b": False, "f64": 0, "f32": 0}


class TypeMismatch(Exception):
    """The first value whose JSON type the kind's Go struct cannot take.

    ``fields`` is Go's field stack (JSON names of the struct fields from the root, no
    list indices or map keys) and ``location`` the exact path (keys and indices), both
    filled in while the error unwinds; ``text`` is set instead of the type description
    when a custom decoder (quantities, times, base64, int-or-string) refused the value."""

    def __init__(self, value: Any, code: str, go_type: str, struct: str, text: str = ""):
        super().__init__(text or go_type)
        self.value = value
        self.code = code          # schema type code of the target ("i32", "s", a message name…)
        self.go_type = go_type    # Go type of the target as reflect prints it
        self.struct = struct      # innermost Go struct holding the field
        self.text = text
        self.fields: list[str] = []
        self.location: list[str | int] = []
        self.literal = ""         # the number as written in the body, when known

    def json_message(self) -> str:
        """What sigs.k8s.io/json says: ``json: cannot unmarshal string into Go struct field
        DeploymentSpec.spec.replicas of type int32``."""
        if self.text:
            return self.text
        return (f"json: cannot unmarshal {self.described()} into Go struct field "
                f"{self.struct}.{'.'.join(self.fields)} of type {self.go_type}")

    def described(self) -> str:
        """encoding/json's name for the offending value (``number 1.5`` for an integer)."""
        v = self.value
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return f"number {self.literal or go_number(v)}" if self.code in _INT_BITS else "number"
        if isinstance(v, str):
            return "string"
        if isinstance(v, dict):
            return "object"
        if isinstance(v, list):
            return "array"
        return type(v).__name__

    def converter_message(self) -> str:
        """What the unstructured converter says for the same value (strategic merge patches)."""
        if self.text:
            return self.text
        v = self.value
        if self.code.startswith("[]"):
            return f"cannot restore slice from {_go_kind(v)}"
        if self.code.startswith("map["):
            return f"cannot restore map from {_go_kind(v)}"
        if self.code not in _GO_SCALAR:
            return f"cannot restore struct from: {_go_kind(v)}"
        if isinstance(v, float) and self.code in _INT_BITS and v.is_integer():
            return f"cannot convert float64 to {self.go_type}"
        if isinstance(v, (int, float)) and not isinstance(v, bool) and self.code in _INT_BITS:
            return f"json: cannot unmarshal {self.described()} into Go value of type {self.go_type}"
        return f"unrecognized type: {self.go_type}"

    def apply_message(self) -> str:
        """What the structured-merge typed converter says (server-side apply bodies)."""
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.location)
        if self.text:
            return f"{path}: {self.text}"
        v = self.value
        if self.code in ("i32", "i64", "f64", "f32"):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                # Numeric to the typed converter; what then refuses it is the conversion.
                return f"{path}: {self.converter_message()}"
            return f"{path}: expected numeric (int or float), got {_go_kind(v)}"
        if self.code in ("s", "y"):
            return f"{path}: expected string, got {_go_kind(v)}"
        if self.code == "b":
            return f"{path}: expected boolean, got {_go_kind(v)}"
        if self.code.startswith("[]"):
            return f"{path}: expected list, got {_go_kind(v)}"
        return f"{path}: expected map, got {_go_kind(v)}"


def _go_kind(v: Any) -> str:
    """Go's name for the kind of a decoded JSON value."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "slice"
    return "interface"


class TooDeep(Exception):
    """A request object nested deeper than :data:`MAX_DEPTH`."""


def go_number(v: int | float) -> str:
    """A number as Go's encoding/json writes it (``1e+30``, ``0.5``, ``1e-7``)."""
    if isinstance(v, int):
        return str(v)
    if v != v or v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else ("-Inf" if v < 0 else "NaN")
    a = abs(v)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        mant, _, exp = f"{v!r}".partition("e")
        if not exp:  # repr chose fixed notation; rebuild it in exponent form
            mant, _, exp = f"{v:e}".partition("e")
            mant = mant.rstrip("0").rstrip(".")
        e = int(exp)
        return f"{mant}e{'+' if e >= 0 else '-'}{abs(e):02d}".replace("e-0", "e-")
    text = format(Decimal(repr(v)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def go_g(v: float) -> str:
    """Go's ``%v`` of a float64: the shortest digits, in exponent form from 1e+06 up or
    below 1e-04."""
    if v != v or v in (float("inf"), float("-inf")):
        return go_number(v)
    if v == 0:
        return "-0" if str(v).startswith("-") else "0"
    sign, digits, exp = Decimal(repr(v)).normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    e = len(text) + exp - 1
    neg = "-" if sign else ""
    if e < -4 or e >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mant}e{'+' if e >= 0 else '-'}{abs(e):02d}"
    fixed = format(Decimal(repr(abs(v))), "f")
    return neg + (fixed.rstrip("0").rstrip(".") if "." in fixed else fixed)


# --------------------------------------------------------------------------- schema


class _Field(NamedTuple):
    """One JSON field of a message, compiled for the walk."""

    code: str        # scalar code, or the element message name
    repeated: bool
    map: bool
    pointer: bool
    always: bool
    go_type: str     # the field's Go type ([]v1.Container, map[string]string, int32)
    elem_go_type: str  # the element's Go type (v1.Container, string)
    message: bool    # elements are a (non-special) message
    special: bool    # elements are a hand-coded special type


def _go_name(name: str) -> str:
    if name in _GO_SCALAR:
        return _GO_SCALAR[name]
    return ".".join(name.split(".")[-2:])


@cache
def _fields(name: str) -> dict[str, _Field]:
    """JSON key -> compiled field, inlined structs lifted into the parent."""
    msg = schema.message(name)
    out: dict[str, _Field] = {}
    for f in msg.fields if msg else ():
        if f.inline:
            out.update(_fields(f.type))
            continue
        elem = _go_name(f.type)
        go_type = f"[]{elem}" if f.repeated else f"map[string]{elem}" if f.map else elem
        is_special = f.type in schema.SPECIAL
        is_message = f.type not in schema.SCALARS and not is_special
        out[f.name] = _Field(f.type, f.repeated, f.map, f.pointer, f.always, go_type, elem,
                             is_message, is_special)
    return out


@cache
def _struct_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


@cache
def _is_wrapper(name: str) -> bool:
    msg = schema.message(name)
    return bool(msg and msg.wrapper)


@cache
def _is_kind(name: str) -> bool:
    msg = schema.message(name)
    return bool(msg and msg.is_kind)


def message_for(api_version: str, kind: str) -> str | None:
    """The schema message of a kind (None: no schema, nothing is typed)."""
    return schema.kind_message(api_version, kind)


# --------------------------------------------------------------------------- the walk


class Unknown(NamedTuple):
    """A field the schema does not define: its path (``spec.containers[0].foo``) and
    where it sits, so that it can be dropped whatever characters its key holds."""

    path: str
    container: dict[str, Any]
    key: str


def check(obj: dict[str, Any], message: str) -> list[Unknown]:
    """Type-check and normalise ``obj`` (a decoded ``message``) in place; return its
    unknown fields in document order. Raises TypeMismatch, TooDeep."""
    unknown: list[Unknown] = []
    _walk(obj, message, "", unknown, True)
    return unknown


def _walk(obj: dict[str, Any], name: str, path: str, unknown: list[Unknown], top: bool = False) -> None:
    fields = _fields(name)
    drop: list[str] | None = None
    for key, v in obj.items():
        f = fields.get(key)
        if f is None:
            if (top or _is_kind(name)) and key in ("apiVersion", "kind"):
                if v is not None and type(v) is not str:
                    err = TypeMismatch(v, "s", "string", _struct_name(name))
                    err.fields.append(key)
                    err.location.append(key)
                    raise err
                continue
            unknown.append(Unknown(f"{path}.{key}" if path else key, obj, key))
            if isinstance(v, (dict, list)):
                bounded(v, _depth(path) + 1)
            continue
        if v is None:
            zero = _null_field(f)
            if zero is _DROP:
                (drop := drop if drop is not None else []).append(key)
            elif zero is not None:
                obj[key] = zero
            continue
        try:
            if f.repeated:
                if type(v) is not list:
                    raise TypeMismatch(v, "[]" + f.code, f.go_type, _struct_name(name))
                _items(v, f, name, f"{path}.{key}" if path else key, unknown)
            elif f.map:
                if type(v) is not dict:
                    raise TypeMismatch(v, "map[" + f.code, f.go_type, _struct_name(name))
                _values(v, f, name, f"{path}.{key}" if path else key, unknown)
            else:
                _one(v, f, f.go_type, name, f"{path}.{key}" if path else key, unknown)
        except TypeMismatch as e:
            e.fields.insert(0, key)
            e.location.insert(0, key)
            raise
    if drop:
        for key in drop:
            del obj[key]


def _one(v: Any, f: _Field, go_type: str, parent: str, path: str, unknown: list[Unknown]) -> None:
    """One value of a field (a single field, a list item or a map value)."""
    code = f.code
    if f.message:
        if _is_wrapper(code):  # a Go named slice, a list in JSON
            if type(v) is not list:
                raise TypeMismatch(v, "[]s", go_type, _struct_name(parent))
            for i, item in enumerate(v):
                if type(item) is not str:
                    if item is None:
                        v[i] = ""
                        continue
                    err = TypeMismatch(item, "s", "string", _struct_name(parent))
                    err.location.append(i)
                    raise err
            return
        if type(v) is not dict:
            raise TypeMismatch(v, code, go_type, _struct_name(parent))
        _walk(v, code, path, unknown)
        return
    if f.special:
        _special(v, code, path)
        return
    t = type(v)
    if code == "s":
        if t is not str:
            raise TypeMismatch(v, code, go_type, _struct_name(parent))
    elif code in _INT_BITS:
        if t is not int:
            raise TypeMismatch(v, code, go_type, _struct_name(parent))
        bits = _INT_BITS[code]
        if not -(1 << (bits - 1)) <= v < 1 << (bits - 1):
            raise TypeMismatch(v, code, go_type, _struct_name(parent))
    elif code == "b":
        if t is not bool:
            raise TypeMismatch(v, code, go_type, _struct_name(parent))
    elif code == "y":
        if t is not str:
            raise TypeMismatch(v, code, go_type, _struct_name(parent))
        problem = base64_error(v)
        if problem:
            raise TypeMismatch(v, code, go_type, _struct_name(parent), problem)
    elif t is not int and t is not float:  # f64, f32
        raise TypeMismatch(v, code, go_type, _struct_name(parent))


def _items(v: list[Any], f: _Field, parent: str, path: str, unknown: list[Unknown]) -> None:
    for i, item in enumerate(v):
        if item is None:
            v[i] = _null_element(f)
            continue
        try:
            _one(item, f, f.elem_go_type, parent, f"{path}[{i}]", unknown)
        except TypeMismatch as e:
            e.location.insert(0, i)
            raise


def _values(v: dict[str, Any], f: _Field, parent: str, path: str, unknown: list[Unknown]) -> None:
    for k, item in v.items():
        if item is None:
            v[k] = _null_element(f)
            continue
        try:
            _one(item, f, f.elem_go_type, parent, f"{path}.{k}", unknown)
        except TypeMismatch as e:
            e.location.insert(0, k)
            raise


_DROP = object()
# Special types Go writes as ``null`` when zero (structs are never omitted by omitempty).
_NULL_SPECIALS = frozenset({"meta.v1.Time", "meta.v1.MicroTime", "meta.v1.Duration", "runtime.RawExtension",
                            "meta.v1.FieldsV1"})


def _null_field(f: _Field) -> Any:
    """What a field given as null becomes after Go decodes and encodes it: _DROP (omitted),
    None (kept as null) or a zero value."""
    if f.pointer or f.repeated or f.map or f.code == "y":
        return None if f.always else _DROP
    if f.message:
        return {}
    if f.special:
        return None if f.code in _NULL_SPECIALS else _DROP
    return _ZERO[f.code] if f.always else _DROP


def _null_element(f: _Field) -> Any:
    """What a null list item or map value becomes after Go decodes and encodes it."""
    code = f.code
    if code in _ZERO:
        return _ZERO[code]
    if code == "y":
        return ""
    if code == "resource.Quantity":
        return "0"
    if code == "intstr.IntOrString":
        return 0
    if code in _NULL_SPECIALS or _is_wrapper(code):
        return None
    return {}


def _depth(path: str) -> int:
    """The nesting depth of the value at ``path`` (an estimate good enough for a bound)."""
    return path.count(".") + path.count("[") + 1


def bounded(value: Any, depth: int = 1) -> None:
    """Raise TooDeep when ``value`` nests deeper than MAX_DEPTH (counting from ``depth``)."""
    if depth > MAX_DEPTH:
        raise TooDeep
    if type(value) is dict:
        for sub in value.values():
            if isinstance(sub, (dict, list)):
                bounded(sub, depth + 1)
    elif type(value) is list:
        for sub in value:
            if isinstance(sub, (dict, list)):
                bounded(sub, depth + 1)


# --------------------------------------------------------------------------- special types


def _special(v: Any, code: str, path: str) -> None:
    """The hand-written decoders of Quantity, IntOrString, Time, MicroTime, Duration."""
    if code == "resource.Quantity":
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise TypeMismatch(v, code, "resource.Quantity", "", QUANTITY_FORMAT)
        text = v.strip() if isinstance(v, str) else go_number(v)
        problem = quantity_error(text)
        if problem:
            raise TypeMismatch(v, code, "resource.Quantity", "", problem)
    elif code == "intstr.IntOrString":
        if type(v) is str:
            return
        if type(v) is not int or not -(1 << 31) <= v < 1 << 31:
            err = TypeMismatch(v, "i32", "int32", "")
            err.text = f"json: cannot unmarshal {err.described()} into Go value of type int32"
            raise err
    elif code in ("meta.v1.Time", "meta.v1.MicroTime", "meta.v1.Duration"):
        if type(v) is not str:
            err = TypeMismatch(v, "s", "string", "")
            err.text = f"json: cannot unmarshal {err.described()} into Go value of type string"
            raise err
        if code == "meta.v1.Duration":
            problem = duration_error(v)
        else:
            problem = time_error(v, micro=code == "meta.v1.MicroTime")
        if problem:
            raise TypeMismatch(v, code, _go_name(code), "", problem)
    elif isinstance(v, (dict, list)):  # RawExtension, FieldsV1: free-form JSON
        bounded(v, _depth(path) + 1)


QUANTITY_FORMAT = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_QUANTITY = re.compile(r"[+-]?0*([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*)([-+]?[0-9]*)")
_SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}


def quantity_error(text: str) -> str:
    """ParseQuantity's error for a quantity string, or "" when it parses."""
    if not text:
        return QUANTITY_FORMAT
    m = _QUANTITY.fullmatch(text)
    if m is None:
        return QUANTITY_FORMAT
    letters, exponent = m.group(3), m.group(4)
    if exponent:  # only a decimal exponent may carry digits: e3, E-6
        ok = letters in ("e", "E") and exponent not in ("+", "-")
    else:
        ok = letters in _SUFFIXES
    return "" if ok else "unable to parse quantity's suffix"


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error(text: str) -> str:
    """Go's base64.StdEncoding error for ``text`` (``illegal base64 data at input byte
    N``), or "" when it decodes.  Line breaks are skipped, padding is required."""
    try:
        base64.b64decode(text, validate=True)
        return ""
    except (binascii.Error, ValueError):
        pass
    src = text.encode("utf-8", "surrogatepass")
    si, n = 0, len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return ""
                # StdEncoding pads, so a short last quantum is corrupt
                return f"illegal base64 data at input byte {si - j}"
            c = src[si]
            si += 1
            if c in _B64:
                j += 1
                continue
            if c in (10, 13):
                continue
            if c != 61:  # '='
                return f"illegal base64 data at input byte {si - 1}"
            if j in (0, 1):
                return f"illegal base64 data at input byte {si - 1}"
            if j == 2:
                while si < n and src[si] in (10, 13):
                    si += 1
                if si == n:
                    return f"illegal base64 data at input byte {n}"
                if src[si] != 61:
                    return f"illegal base64 data at input byte {si - 1}"
                si += 1
            while si < n and src[si] in (10, 13):
                si += 1
            if si < n:
                return f"illegal base64 data at input byte {si}"
            return ""


RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def time_error(value: str, *, micro: bool = False) -> str:
    """time.Parse's error for metav1.Time (RFC3339) or MicroTime (six fraction digits)."""
    layout = RFC3339_MICRO if micro else RFC3339

    def bad(rest: str, elem: str) -> str:
        return f"parsing time {go_quote(value)} as {go_quote(layout)}: cannot parse {go_quote(rest)} as {go_quote(elem)}"

    def out_of_range(what: str) -> str:
        return f"parsing time {go_quote(value)}: {what} out of range"

    rest = value
    nums: dict[str, int] = {}
    for elem, width, lit in (("2006", 4, "-"), ("01", 2, "-"), ("02", 2, "T"), ("15", 0, ":"), ("04", 2, ":"),
                             ("05", 2, "")):
        digits = _leading_digits(rest, width)
        if digits is None:
            return bad(rest, elem)
        nums[elem] = int(digits)
        rest = rest[len(digits):]
        if elem == "01" and not 1 <= nums[elem] <= 12:
            return out_of_range("month")
        if elem == "15" and nums[elem] > 23:
            return out_of_range("hour")
        if elem == "04" and nums[elem] > 59:
            return out_of_range("minute")
        if elem == "05" and nums[elem] > 59:
            return out_of_range("second")
        if lit:
            if not rest.startswith(lit):
                return bad(rest, lit)
            rest = rest[1:]
    if micro:
        if len(rest) < 7 or rest[0] not in ".," or not rest[1:7].isdigit() or not rest[1:7].isascii():
            return bad(rest, ".000000")
        rest = rest[7:]
    elif len(rest) >= 2 and rest[0] in ".," and rest[1].isdigit():
        i = 1
        while i < len(rest) and rest[i].isdigit() and rest[i].isascii():
            i += 1
        rest = rest[i:]
    if rest.startswith("Z"):
        rest = rest[1:]
    else:
        zone = rest[:6]
        if len(zone) < 6 or zone[0] not in "+-" or zone[3] != ":" or not (zone[1:3] + zone[4:6]).isdigit():
            return bad(rest, "Z07:00")
        if int(zone[1:3]) > 24:
            return out_of_range("time zone offset hour")
        if int(zone[4:6]) > 60:
            return out_of_range("time zone offset minute")
        rest = rest[6:]
    if rest:
        return f"parsing time {go_quote(value)}: extra text: {go_quote(rest)}"
    year, month, day = nums["2006"], nums["01"], nums["02"]
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day < 1 or day > (_DAYS[month - 1] if month != 2 or leap else 28):
        return out_of_range("day")
    return ""


def _leading_digits(s: str, width: int) -> str | None:
    """``width`` ASCII digits at the start of s (width 0: one or two), or None."""
    if width:
        head = s[:width]
        return head if len(head) == width and head.isdigit() and head.isascii() else None
    n = 0
    while n < 2 and n < len(s) and s[n].isdigit() and s[n].isascii():
        n += 1
    return s[:n] if n else None


_DURATION_UNITS = frozenset({"ns", "us", "µs", "μs", "ms", "s", "m", "h"})


def duration_error(value: str) -> str:
    """time.ParseDuration's error, or "" when the duration parses."""
    invalid = f"time: invalid duration {go_quote(value)}"
    s = value[1:] if value[:1] in ("+", "-") else value
    if s == "0":
        return ""
    if not s:
        return invalid
    i = 0
    while i < len(s):
        start = i
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        pre = i > start
        post = False
        if i < len(s) and s[i] == ".":
            i += 1
            frac = i
            while i < len(s) and "0" <= s[i] <= "9":
                i += 1
            post = i > frac
        if not pre and not post:
            return invalid
        unit_start = i
        while i < len(s) and s[i] != "." and not "0" <= s[i] <= "9":
            i += 1
        if i == unit_start:
            return f"time: missing unit in duration {go_quote(value)}"
        if s[unit_start:i] not in _DURATION_UNITS:
            return f"time: unknown unit {go_quote(s[unit_start:i])} in duration {go_quote(value)}"
    return ""
