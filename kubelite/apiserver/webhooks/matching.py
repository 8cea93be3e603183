"""Which webhooks a request goes to: rules, scope, selectors, matchPolicy, matchConditions."""
from __future__ import annotations

import functools
from typing import Any

from kubelite.api.resources import ResourceInfo, served
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiserver.webhooks.source import Hook

Obj = dict[str, Any]


def _split(resource: str) -> tuple[str, str]:
    res, _, sub = resource.partition("/")
    return res, sub


def rule_matches(rule: Obj, operation: str, info: ResourceInfo, subresource: str, namespace: str) -> bool:
    """One RuleWithOperations against a request for ``info`` (upstream's rules.Matcher)."""
    ops = rule.get("operations") or []
    if "*" not in ops and operation not in ops:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and info.group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and info.version not in versions:
        return False
    if not any((r == "*" or r == info.plural) and (s == "*" or s == subresource)
               for r, s in (_split(str(x)) for x in rule.get("resources") or [])):
        return False
    scope = rule.get("scope") or "*"
    is_namespace = info.group == "" and info.plural == "namespaces"
    if scope == "Cluster":
        return namespace == "" or is_namespace
    if scope == "Namespaced":
        return namespace != "" and not is_namespace
    return True


def equivalents(info: ResourceInfo) -> list[ResourceInfo]:
    """Other served versions of the same stored objects (matchPolicy Equivalent): the
    versions of one custom resource, and the two APIs of Events."""
    out: list[ResourceInfo] = []
    for other in served():
        if other is info or other.plural != info.plural:
            continue
        same_custom = isinstance(info, CustomResourceInfo) and isinstance(other, CustomResourceInfo) and \
            other.group == info.group
        if same_custom or (info.plural == "events" and {info.group, other.group} == {"", "events.k8s.io"}):
            out.append(other)
    return out


def matching_resource(hook: Hook, operation: str, info: ResourceInfo, subresource: str,
                      namespace: str) -> ResourceInfo | None:
    """The resource (the request's own, or an equivalent one) the hook's rules match."""
    rules = [r for r in hook.spec.get("rules") or [] if isinstance(r, dict)]
    if any(rule_matches(r, operation, info, subresource, namespace) for r in rules):
        return info
    if (hook.spec.get("matchPolicy") or "Equivalent") != "Equivalent":
        return None
    for other in equivalents(info):
        if any(rule_matches(r, operation, other, subresource, namespace) for r in rules):
            return other
    return None


def labels_of(obj: Obj | None) -> dict[str, str]:
    """An object's labels ({} for none)."""
    md = (obj or {}).get("metadata") or {}
    labels = md.get("labels")
    return labels if isinstance(labels, dict) else {}


def object_selector_matches(hook: Hook, obj: Obj | None, old: Obj | None) -> bool:
    """objectSelector: the new or the old object's labels match."""
    if not hook.object_selector.requirements and not hook.object_selector.nothing:
        return True
    return any(o is not None and hook.object_selector.matches(labels_of(o)) for o in (obj, old))


class MatchConditionError(Exception):
    """A matchCondition that could not be evaluated."""


@functools.lru_cache(maxsize=1024)
def _program(expression: str) -> Any:
    import celpy  # late: cel-python costs a tenth of a second at start-up
    env = celpy.Environment()
    try:
        return env.program(env.compile(expression))
    except Exception as e:  # cel-python raises several parse error classes
        raise MatchConditionError(f"compilation failed: {' '.join(str(e).split())}") from None


def conditions_match(hook: Hook, variables: Obj) -> bool:
    """Whether every matchCondition is true; MatchConditionError (failurePolicy Fail) or
    False (Ignore) when one cannot be evaluated.  A false condition wins over errors."""
    import celpy
    from celpy import celtypes
    conds = [c for c in hook.spec.get("matchConditions") or [] if isinstance(c, dict)]
    if not conds:
        return True
    activation = {k: celpy.json_to_cel(v) for k, v in variables.items()}
    problems: list[str] = []
    for c in conds:
        try:
            result = _program(str(c.get("expression") or "")).evaluate(activation)
        except MatchConditionError as e:
            problems.append(f"matchCondition '{c.get('name')}': {e}")
            continue
        except celpy.CELEvalError as e:
            problems.append(f"matchCondition '{c.get('name')}': evaluation error: {e.args[0] if e.args else e}")
            continue
        if not isinstance(result, celtypes.BoolType):
            problems.append(f"matchCondition '{c.get('name')}': must evaluate to bool")
            continue
        if not bool(result):
            return False
    if problems:
        if (hook.spec.get("failurePolicy") or "Fail") == "Ignore":
            return False
        raise MatchConditionError("; ".join(problems))
    return True
