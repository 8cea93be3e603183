"""``x-kubernetes-validations``: CEL rules in a CRD's schema, evaluated with cel-python.

Each rule sits on a schema node and sees that node's value as ``self``.  A rule that
names ``oldSelf`` is a transition rule: it runs only on updates, and only where the old
object has a value at the same place (object properties correlate by name, items of
``x-kubernetes-list-type: map`` lists by their keys; other list items do not correlate).
A rule that is not true is a field error at the node (or at its ``fieldPath``) with the
rule's ``message`` or ``failed rule: <rule>``, and the ``reason`` it names — the words
apiextensions-apiserver writes.  Programs are compiled once per rule text.

Not done: messageExpression, the cost budget, and Kubernetes' CEL library extensions
(``isURL``, ``quantity`` …) that cel-python does not have.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from kubelite.api.errors import Cause
from kubelite.api.validation_common import go_quote

Obj = dict[str, Any]
_OLD_SELF = re.compile(r"\boldSelf\b")
_MISSING_KEY = re.compile(r"no such member in mapping: '(.*)'")


class RuleError(Exception):
    """A rule that does not compile."""


@functools.lru_cache(maxsize=1024)
def _program(rule: str) -> Any:
    """The compiled program of one rule (RuleError when it does not compile)."""
    import celpy  # late: cel-python costs a tenth of a second at start-up
    env = celpy.Environment()
    try:
        return env.program(env.compile(rule))
    except Exception as e:  # cel-python raises several parse/type error classes
        raise RuleError(" ".join(str(e).split())) from None


def compile_errors(schema: Obj, path: str) -> list[Cause]:
    """Rules of a CRD schema that are malformed or do not compile (CRD validation)."""
    errs: list[Cause] = []
    for node, npath in _nodes(schema, path):
        for i, rule in enumerate(node.get("x-kubernetes-validations") or []):
            rpath = f"{npath}.x-kubernetes-validations[{i}]"
            if not isinstance(rule, dict) or not rule.get("rule"):
                errs.append(Cause("FieldValueRequired", "Required value: rule is not specified", f"{rpath}.rule"))
                continue
            msg = rule.get("message")
            if msg is not None and "\n" in str(msg):
                errs.append(Cause("FieldValueInvalid", f"Invalid value: {go_quote(str(msg))}: must not contain line "
                                  "breaks", f"{rpath}.message"))
            reason = rule.get("reason")
            if reason is not None and reason not in _REASONS:
                errs.append(Cause("FieldValueNotSupported", f"Unsupported value: {go_quote(str(reason))}: supported "
                                  'values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", '
                                  '"FieldValueRequired"', f"{rpath}.reason"))
            try:
                _program(str(rule["rule"]))
                problem = _undefined_field(str(rule["rule"]), node)
            except RuleError as e:
                problem = str(e)
            if problem:
                errs.append(Cause("FieldValueInvalid", f"Invalid value: {_go_rule(rule)}: compilation failed: "
                                  f"{problem}", f"{rpath}.rule"))
    return errs


_SELF_FIELD = re.compile(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)")


def _undefined_field(rule: str, node: Obj) -> str:
    """cel-go type-checks ``self.x`` against the schema; cel-python does not, so the
    plain case is checked here: a field the node's properties do not declare."""
    props = node.get("properties")
    if not isinstance(props, dict) or node.get("x-kubernetes-preserve-unknown-fields") \
            or node.get("additionalProperties"):
        return ""
    for m in _SELF_FIELD.finditer(rule):
        if m.group(1) not in props and m.group(1) not in ("all", "exists", "exists_one", "map", "filter", "size"):
            return f"ERROR: <input>:1:{m.start(1)}: undefined field '{m.group(1)}'"
    return ""


def _go_rule(rule: Obj) -> str:
    """%#v of an apiextensions.ValidationRule, as the compile error shows it."""
    reason = rule.get("reason")
    fpath = rule.get("fieldPath") or ""
    return (f"apiextensions.ValidationRule{{Rule:{go_quote(str(rule.get('rule') or ''))}, "
            f"Message:{go_quote(str(rule.get('message') or ''))}, "
            f"MessageExpression:{go_quote(str(rule.get('messageExpression') or ''))}, "
            f"Reason:{'(*apiextensions.FieldValueErrorReason)(nil)' if reason is None else go_quote(str(reason))}, "
            f"FieldPath:{go_quote(str(fpath))}, OptionalOldSelf:(*bool)(nil)}}")


def _nodes(schema: Obj, path: str) -> Iterator[tuple[Obj, str]]:
    yield schema, path
    props = schema.get("properties")
    if isinstance(props, dict):
        for k, sub in props.items():
            if isinstance(sub, dict):
                yield from _nodes(sub, f"{path}.properties[{k}]")
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            yield from _nodes(sub, f"{path}.{key}")


_REASONS = {"FieldValueInvalid": "Invalid value", "FieldValueForbidden": "Forbidden",
            "FieldValueRequired": "Required value", "FieldValueDuplicate": "Duplicate value"}
_ABSENT = object()


def validate(obj: Obj, old: Obj | None, schema: Obj | None) -> list[Cause]:
    """The field errors of every rule in the schema that ``obj`` does not satisfy."""
    if schema is None:
        return []
    errs: list[Cause] = []
    _walk(obj, old if old is not None else _ABSENT, schema, "", errs)
    return errs


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(value: Any, old: Any, s: Obj, path: str, errs: list[Cause]) -> None:
    if value is None:
        return
    rules = s.get("x-kubernetes-validations")
    if rules:
        _check(value, old, s, rules, path, errs)
    if isinstance(value, dict):
        props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
        addl = s.get("additionalProperties")
        old_map = old if isinstance(old, dict) else {}
        for key, v in value.items():
            sub = props.get(key) if isinstance(props, dict) else None
            if not isinstance(sub, dict):
                sub = addl if isinstance(addl, dict) else None
            if sub is not None and not (not path and key == "metadata"):
                _walk(v, old_map.get(key, _ABSENT), sub, _join(path, key), errs)
    elif isinstance(value, list):
        items = s.get("items")
        if not isinstance(items, dict):
            return
        keys = s.get("x-kubernetes-list-map-keys") if s.get("x-kubernetes-list-type") == "map" else None
        old_by_key: dict[tuple[Any, ...], Any] = {}
        if keys and isinstance(old, list):
            old_by_key = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
        for i, v in enumerate(value):
            o = old_by_key.get(tuple(v.get(k) for k in keys), _ABSENT) if keys and isinstance(v, dict) else _ABSENT
            _walk(v, o, items, f"{path}[{i}]", errs)


def _type_name(value: Any, s: Obj) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return str(s.get("type") or "")


def _check(value: Any, old: Any, s: Obj, rules: list[Any], path: str, errs: list[Cause]) -> None:
    import celpy
    from celpy import celtypes
    activation: dict[str, Any] = {"self": celpy.json_to_cel(value)}
    for rule in rules:
        if not isinstance(rule, dict) or not rule.get("rule"):
            continue
        text = str(rule["rule"])
        transition = bool(_OLD_SELF.search(text))
        if transition:
            if old is _ABSENT or old is None:
                continue
            activation["oldSelf"] = celpy.json_to_cel(old)
        message = str(rule.get("message") or "").strip()
        where = path + str(rule.get("fieldPath") or "") if rule.get("fieldPath") else path
        where = where.lstrip(".")
        try:
            result = _program(text).evaluate(activation)
        except RuleError:
            continue  # refused when the CRD was written; an old stored CRD is not enforced
        except celpy.CELEvalError as e:
            detail = _eval_error(e)
            errs.append(Cause("FieldValueInvalid", f"Invalid value: {go_quote(_type_name(value, s))}: {detail} "
                              f"evaluating rule: {message or text}", where))
            continue
        finally:
            activation.pop("oldSelf", None)
        if isinstance(result, celtypes.BoolType) and bool(result):
            continue
        detail = message or f"failed rule: {text}"
        reason = str(rule.get("reason") or "FieldValueInvalid")
        if reason in ("FieldValueForbidden", "FieldValueRequired"):
            errs.append(Cause(reason, f"{_REASONS[reason]}: {detail}", where))
        elif reason == "FieldValueDuplicate":
            errs.append(Cause(reason, f"Duplicate value: {_shown(value, s)}", where))
        else:
            errs.append(Cause("FieldValueInvalid", f"Invalid value: {_shown(value, s)}: {detail}", where))


def _shown(value: Any, s: Obj) -> str:
    """The bad value as upstream shows it: the type name for objects and lists."""
    if isinstance(value, (dict, list)):
        return go_quote(_type_name(value, s))
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _eval_error(e: Exception) -> str:
    """cel-go's words for the common runtime errors."""
    text = str(e.args[0]) if e.args else str(e)
    m = _MISSING_KEY.match(text)
    if m:
        return f"no such key: {m.group(1)}"
    if "divide by zero" in text:
        return "division by zero"
    return text


def cel_go_error(e: Exception) -> str:
    """A cel-python evaluation error in cel-go's words, for the admission policies too."""
    return _eval_error(e)
