"""Label and field selectors, parsed and matched the way apimachinery does.

Label selectors come in two shapes: the query-string form
(``a=b,c!=d,e in (x,y),f notin (z),g,!h``) and the metav1.LabelSelector dict
(``matchLabels`` + ``matchExpressions``).  Both become one ``LabelSelector`` whose
requirements are sorted by key, so ``str()`` prints what kubectl and the Scale
subresource print (``app=web``).

Field selectors are ``field=value`` / ``field==value`` / ``field!=value`` terms joined
by commas; each kind supports only a few field labels (``convert_field_selector``), and
reads each the way upstream's per-kind selectable-field sets do (unset is "" or "false").
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
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


# Which field labels each kind accepts, and the name its selectable-field set knows each
# one by (upstream: the scheme's field label conversion functions; events.k8s.io labels
# map onto core Event's, ``spec.host`` is an old name of ``spec.nodeName``).  A kind
# without an entry accepts only metadata.name and metadata.namespace.
def _same(*labels: str) -> dict[str, str]:
    return {label: label for label in labels}


_META_LABELS = ("metadata.name", "metadata.namespace")
_EVENT_REFERENCE = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
_FIELD_LABELS: dict[tuple[str, str], dict[str, str]] = {
    ("", "Pod"): {**_same(*_META_LABELS, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                          "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                          "status.podIPs", "status.nominatedNodeName"),
                  "spec.host": "spec.nodeName"},
    ("", "Node"): _same("metadata.name", "spec.unschedulable"),
    ("", "ReplicationController"): _same(*_META_LABELS, "status.replicas"),
    ("", "Event"): _same(*(f"involvedObject.{f}" for f in _EVENT_REFERENCE), "reason", "reportingComponent",
                         "source", "type", *_META_LABELS),
    ("", "Namespace"): _same("status.phase", "metadata.name"),
    ("", "Secret"): _same("type", *_META_LABELS),
    ("", "Service"): _same(*_META_LABELS, "spec.clusterIP", "spec.type"),
    ("batch", "Job"): _same(*_META_LABELS, "status.successful"),
    ("events.k8s.io", "Event"): {**{f"regarding.{f}": f"involvedObject.{f}" for f in _EVENT_REFERENCE},
                                 "reportingController": "reportingComponent",
                                 **_same("reason", "source", "type", *_META_LABELS)},
}


def convert_field_selector(group: str, kind: str, terms: Iterable[FieldTerm]) -> list[FieldTerm]:
    """Each term with its label renamed to the one ``field_value`` knows; 400 for a label
    the kind does not support, worded as upstream's conversion functions word it."""
    labels = _FIELD_LABELS.get((group, kind))
    out: list[FieldTerm] = []
    for label, op, value in terms:
        if labels is None:
            if label not in _META_LABELS:
                raise bad_request(f"{go_quote(label)} is not a known field selector: only "
                                  f'"metadata.name", "metadata.namespace"')
            out.append((label, op, value))
        elif label in labels:
            out.append((labels[label], op, value))
        else:
            raise bad_request(f"field label not supported: {label}")
    return out


Render = Callable[[dict[str, Any]], str]


def _text(v: Any) -> str:
    """A string field as Go holds it: absent is ""."""
    return v if isinstance(v, str) else "" if v is None else str(v)


def _flag(v: Any) -> str:
    """strconv.FormatBool of a Go bool: absent (or false) is "false"."""
    return "true" if v is True else "false"


def _part(obj: dict[str, Any], name: str) -> dict[str, Any]:
    v = obj.get(name)
    return v if isinstance(v, dict) else {}


def _pod_ip(pod: dict[str, Any]) -> str:
    # The primary address: podIPs[0], or podIP alone (what v1 → internal conversion does).
    status = _part(pod, "status")
    ips = status.get("podIPs") or []
    if ips and isinstance(ips[0], dict):
        return _text(ips[0].get("ip"))
    return _text(status.get("podIP"))


def _event_ref(ev: dict[str, Any]) -> dict[str, Any]:
    # A core Event names the object in involvedObject, an events.k8s.io one in regarding.
    return _part(ev, "involvedObject") if "involvedObject" in ev else _part(ev, "regarding")


def _event_ref_field(name: str) -> Render:
    return lambda ev: _text(_event_ref(ev).get(name))


def _event_source(ev: dict[str, Any]) -> str:
    src = _part(ev, "source") or _part(ev, "deprecatedSource")
    return _text(src.get("component")) or _event_reporter(ev)


def _event_reporter(ev: dict[str, Any]) -> str:
    return _text(ev.get("reportingComponent") or ev.get("reportingController"))


# Upstream's ToSelectableFields per kind: how each supported label reads an object.  Unset
# fields read as their Go zero value ("" or "false"); status.podIPs is accepted but is in
# no pod's field set, so it always reads "".
_RENDER: dict[str, dict[str, Render]] = {
    "Pod": {
        "spec.nodeName": lambda o: _text(_part(o, "spec").get("nodeName")),
        "spec.restartPolicy": lambda o: _text(_part(o, "spec").get("restartPolicy")),
        "spec.schedulerName": lambda o: _text(_part(o, "spec").get("schedulerName")),
        "spec.serviceAccountName": lambda o: _text(_part(o, "spec").get("serviceAccountName")),
        "spec.hostNetwork": lambda o: _flag(_part(o, "spec").get("hostNetwork")),
        "status.phase": lambda o: _text(_part(o, "status").get("phase")),
        "status.podIP": _pod_ip,
        "status.podIPs": lambda o: "",
        "status.nominatedNodeName": lambda o: _text(_part(o, "status").get("nominatedNodeName")),
    },
    "Node": {"spec.unschedulable": lambda o: _flag(_part(o, "spec").get("unschedulable"))},
    "ReplicationController": {"status.replicas": lambda o: str(int(_part(o, "status").get("replicas") or 0))},
    "Namespace": {"status.phase": lambda o: _text(_part(o, "status").get("phase"))},
    "Job": {"status.successful": lambda o: str(int(_part(o, "status").get("succeeded") or 0))},
    "Secret": {"type": lambda o: _text(o.get("type"))},
    "Service": {"spec.clusterIP": lambda o: _text(_part(o, "spec").get("clusterIP")),
                "spec.type": lambda o: _text(_part(o, "spec").get("type"))},
    "Event": {
        **{f"involvedObject.{f}": _event_ref_field(f) for f in _EVENT_REFERENCE},
        "reason": lambda o: _text(o.get("reason")),
        "reportingComponent": _event_reporter,
        "source": _event_source,
        "type": lambda o: _text(o.get("type")),
    },
}


def field_value(kind: str, obj: dict[str, Any], label: str) -> str:
    """The string a field selector compares against (upstream's ToSelectableFields);
    ``label`` is a converted one (``convert_field_selector``)."""
    render = _RENDER.get(kind, {}).get(label)
    if render is not None:
        return render(obj)
    if label in _META_LABELS:
        return _text(_part(obj, "metadata").get(label.split(".", 1)[1]))
    return ""  # a label outside the kind's field set reads as missing


def field_matches(kind: str, obj: dict[str, Any], terms: Iterable[FieldTerm]) -> bool:
    """True when every (label, op, value) term holds for ``obj``."""
    for label, op, value in terms:
        have = field_value(kind, obj, label)
        if (have == value) != (op == "="):
            return False
    return True
