"""Label and field selectors, parsed and matched the way apimachinery does.

Label selectors come in two shapes: the query-string form
(``a=b,c!=d,e in (x,y),f notin (z),g,!h``) and the metav1.LabelSelector dict
(``matchLabels`` + ``matchExpressions``).  Both become one ``LabelSelector`` whose
requirements are sorted by key, so ``str()`` prints what kubectl and the Scale
subresource print (``app=web``).

Field selectors are ``field=value`` / ``field==value`` / ``field!=value`` terms joined
by commas; each kind supports only a few field labels (``check_field_labels``).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubelite.api.errors import bad_request
from kubelite.api.validation_common import go_quote, go_string_slice, is_qualified_name, is_valid_label_value

# --- label selectors -------------------------------------------------------------------

EXISTS, DOES_NOT_EXIST = "exists", "!"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN, GT, LT = "in", "notin", "gt", "lt"


@dataclass(frozen=True)
class Requirement:
    """One ANDed term: key, operator and (sorted, unique) values."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """labels.Requirement.Matches."""
        has = self.key in labels
        val = labels.get(self.key)
        if self.op in (IN, EQUALS, DOUBLE_EQUALS):
            return has and val in self.values
        if self.op in (NOT_IN, NOT_EQUALS):
            return not has or val not in self.values
        if self.op == EXISTS:
            return has
        if self.op == DOES_NOT_EXIST:
            return not has
        if self.op in (GT, LT):
            if not has:
                return False
            try:
                lv, rv = int(val or ""), int(self.values[0])
            except ValueError:
                return False
            return lv > rv if self.op == GT else lv < rv
        return False

    def __str__(self) -> str:
        if self.op == EXISTS:
            return self.key
        if self.op == DOES_NOT_EXIST:
            return "!" + self.key
        vals = ",".join(sorted(self.values))
        if self.op in (IN, NOT_IN):
            return f"{self.key} {self.op} ({vals})"
        sym = {GT: ">", LT: "<"}.get(self.op, self.op)
        return f"{self.key}{sym}{vals}"


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector; empty matches everything, ``nothing`` matches nothing."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: dict[str, str] | None) -> bool:
        """True when every requirement holds for ``labels``."""
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        """True for the selector that matches everything."""
        return not self.nothing and not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


NOTHING = LabelSelector(nothing=True)

_SPECIAL = set("=!(),><")
_TOKENS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "in": "in", "<": "<",
           "!=": "!=", "notin": "notin", "(": "("}
_IDENT, _END, _ERR = "ident", "end", "error"


def _lex(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in " \t\r\n":
            i += 1
        if i >= n:
            out.append((_END, ""))
            return out
        if s[i] in _SPECIAL:
            buf, last = "", None
            while i < n and s[i] in _SPECIAL:
                if buf + s[i] in _TOKENS:
                    buf += s[i]
                    last = buf
                    i += 1
                elif last is not None:
                    break
                else:
                    buf += s[i]
                    i += 1
            if last is None:
                out.append((_ERR, f"error expected: keyword found '{buf}'"))
            else:
                out.append((_TOKENS[last], last))
            continue
        start = i
        while i < n and s[i] not in _SPECIAL and s[i] not in " \t\r\n":
            i += 1
        word = s[start:i]
        out.append((_TOKENS.get(word, _IDENT), word) if word in ("in", "notin") else (_IDENT, word))


class _Parser:
    def __init__(self, s: str):
        self.items = _lex(s)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (IN, NOT_IN):
            tok = _IDENT
        return tok, lit

    def take(self, values: bool = True) -> tuple[str, str]:
        t = self.peek(values)
        self.pos += 1
        return t

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok in (_IDENT, "!"):
                try:
                    reqs.append(self.requirement())
                except ValueError as e:
                    raise ValueError(f"unable to parse requirement: {e}") from None
                t, lit2 = self.take()
                if t == _END:
                    return reqs
                if t == ",":
                    t2, l2 = self.peek()
                    if t2 not in (_IDENT, "!"):
                        raise ValueError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise ValueError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _END:
                return reqs
            else:
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, lit = self.take()
        if tok == "!":
            op = DOES_NOT_EXIST
            tok, lit = self.take()
        if tok != _IDENT:
            raise ValueError(f"found '{lit}', expected: identifier")
        _check_key(lit)
        key = lit
        if op == DOES_NOT_EXIST or self.peek()[0] in (_END, ","):
            # "!key" never takes an operator; whatever follows fails in parse().
            return _new_requirement(key, op or EXISTS, [])
        tok, lit = self.take(values=False)
        ops = {IN: IN, NOT_IN: NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS, ">": GT, "<": LT}
        if tok not in ops:
            raise ValueError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        op = ops[tok]
        if op in (IN, NOT_IN):
            values = self.set_values()
        else:
            values = self.exact_value()
        return _new_requirement(key, op, sorted(values))

    def set_values(self) -> set[str]:
        tok, lit = self.take()
        if tok != "(":
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok in (_IDENT, ","):
            s = self.identifiers()
            if self.take()[0] != ")":
                raise ValueError(f"found '{lit}', expected: ')'")
            return s
        if tok == ")":
            self.take()
            return {""}
        raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == _IDENT:
                s.add(lit)
                t2, l2 = self.peek()
                if t2 == ",":
                    continue
                if t2 == ")":
                    return s
                raise ValueError(f"found '{l2}', expected: ',' or ')'")
            if tok == ",":
                if not s:
                    s.add("")
                t2, _ = self.peek()
                if t2 == ")":
                    s.add("")
                    return s
                if t2 == ",":
                    self.take()
                    s.add("")
                continue
            raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.peek()
        if tok in (_END, ","):
            return {""}
        tok, lit = self.take()
        if tok == _IDENT:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


def _check_key(k: str, path: str = "<nil>") -> None:
    errs = is_qualified_name(k)
    if errs:
        raise ValueError(f'{path}: Invalid value: {go_quote(k)}: {"; ".join(errs)}')


def _new_requirement(key: str, op: str, values: list[str]) -> Requirement:
    """labels.NewRequirement with its checks."""
    _check_key(key, "key")
    bad = f"values: Invalid value: {go_string_slice(values)}"
    if op in (IN, NOT_IN) and not values:
        raise ValueError(f"{bad}: for 'in', 'notin' operators, values set can't be empty")
    if op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        raise ValueError(f"{bad}: exact-match compatibility requires one single value")
    if op in (EXISTS, DOES_NOT_EXIST) and values:
        raise ValueError(f"{bad}: values set must be empty for exists and does not exist")
    if op in (GT, LT):
        if len(values) != 1:
            raise ValueError(f"{bad}: for 'Gt', 'Lt' operators, exactly one value is required")
        try:
            int(values[0])
        except ValueError:
            raise ValueError(f"values[0]: Invalid value: {go_quote(values[0])}: "
                             "for 'Gt', 'Lt' operators, the value must be an integer") from None
    for i, v in enumerate(values):
        errs = is_valid_label_value(v)
        if errs:
            raise ValueError(f'values[{i}][{key}]: Invalid value: {go_quote(v)}: {"; ".join(errs)}')
    return Requirement(key, op, tuple(values))


def parse_label_selector(s: str) -> LabelSelector:
    """Parse the string form; raises 400 BadRequest with upstream's parser message."""
    try:
        reqs = _Parser(s or "").parse()
    except ValueError as e:
        raise bad_request(str(e)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


_DICT_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_dict(d: dict[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None matches nothing, {} matches everything."""
    if d is None:
        return NOTHING
    reqs: list[Requirement] = []
    try:
        for k, v in (d.get("matchLabels") or {}).items():
            reqs.append(_new_requirement(k, EQUALS, [v]))
        for e in d.get("matchExpressions") or []:
            op = e.get("operator", "")
            if op not in _DICT_OPS:
                raise ValueError(f"{go_quote(op)} is not a valid label selector operator")
            reqs.append(_new_requirement(e.get("key", ""), _DICT_OPS[op], sorted(set(e.get("values") or []))))
    except ValueError as err:
        raise bad_request(str(err)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


def selector_from_set(labels: dict[str, str]) -> LabelSelector:
    """labels.SelectorFromSet: equality on every pair (a Service's selector)."""
    return LabelSelector(tuple(Requirement(k, EQUALS, (v,)) for k, v in sorted(labels.items())))


# --- field selectors -------------------------------------------------------------------

FieldTerm = tuple[str, str, str]


def _split_terms(s: str) -> list[str]:
    terms, start, in_slash = [], 0, False
    for i, c in enumerate(s):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _unescape(v: str) -> str:
    if "\\" not in v and "," not in v and "=" not in v:
        return v
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == "\\":
            if i + 1 >= len(v):
                raise bad_request("invalid field selector: invalid escape sequence: \\")
            nxt = v[i + 1]
            if nxt not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{nxt}")
            out.append(nxt)
            i += 2
            continue
        if c in ",=":
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(c)}")
        out.append(c)
        i += 1
    return "".join(out)


def parse_field_selector(s: str) -> list[FieldTerm]:
    """``a=b,c!=d`` → [(field, op, value)] with op normalised to ``=`` or ``!=``; sorted as upstream."""
    if not s:
        return []
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(s)):
        if not part:
            continue
        found = None
        for i in range(len(part)):
            for op in ("!=", "==", "="):
                if part.startswith(op, i):
                    found = (part[:i], op, part[i + len(op):])
                    break
            if found:
                break
        if not found:
            raise bad_request(f"invalid selector: '{s}'; can't understand '{part}'")
        field, op, rhs = found
        terms.append((field, "!=" if op == "!=" else "=", _unescape(rhs)))
    return terms


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "Pod": _COMMON_FIELDS + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                             "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
                             "status.nominatedNodeName"),
    "Event": _COMMON_FIELDS + ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
                               "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                               "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
                               "reportingController", "deprecatedSource.component"),
    "Namespace": ("metadata.name", "status.phase"),
    "Secret": _COMMON_FIELDS + ("type",),
    "ReplicaSet": _COMMON_FIELDS + ("status.replicas",),
    "ReplicationController": _COMMON_FIELDS + ("status.replicas",),
    "Node": ("metadata.name", "spec.unschedulable"),
}


def supported_field_labels(kind: str) -> tuple[str, ...]:
    """The field labels a kind accepts in ?fieldSelector=."""
    return FIELD_LABELS.get(kind, _COMMON_FIELDS)


def check_field_labels(kind: str, terms: Iterable[FieldTerm]) -> None:
    """Raise 400 ``field label not supported: X`` for the first unsupported field."""
    allowed = supported_field_labels(kind)
    for field, _, _ in terms:
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")


def _dig(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _as_field_string(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def field_value(kind: str, obj: dict[str, Any], field: str) -> str:
    """The string a field selector compares against (upstream's ToSelectableFields)."""
    if kind == "Pod" and field == "status.podIPs":
        # Upstream exposes only the primary pod IP under this label.
        ips = (obj.get("status") or {}).get("podIPs") or []
        return ips[0].get("ip", "") if ips else ""
    if kind == "Event":
        if field == "source":
            src = obj.get("source") or obj.get("deprecatedSource") or {}
            return _as_field_string(src.get("component") or obj.get("reportingController") or "")
        if field == "reportingComponent":
            return _as_field_string(obj.get("reportingComponent") or obj.get("reportingController"))
        alias = {"involvedObject": "regarding", "regarding": "involvedObject"}
        head, _, rest = field.partition(".")
        if head in alias and _dig(obj, field) is None:
            return _as_field_string(_dig(obj, f"{alias[head]}.{rest}"))
    if field == "metadata.namespace" and kind in ("Namespace", "Node"):
        return ""
    return _as_field_string(_dig(obj, field))


def field_matches(kind: str, obj: dict[str, Any], terms: Iterable[FieldTerm]) -> bool:
    """True when every (field, op, value) term holds for ``obj``."""
    for field, op, value in terms:
        have = field_value(kind, obj, field)
        if (have == value) != (op == "="):
            return False
    return True
