"""RBAC policy rules as pure functions: does a rule allow a request, does one set of rules
cover another (escalation checks), and how rules print in error messages.

Matching follows upstream's ``RuleAllows``:

* verbs: ``*`` or the request's verb;
* API groups: ``*`` or the request's group (``""`` is the core group);
* resources: ``*``, the resource (``pods``), the resource with its subresource
  (``pods/log``), or ``*/<subresource>``;
* resourceNames: empty means every name; otherwise the request must name one of them
  (a create or an unnamed list never matches a rule restricted to names);
* nonResourceURLs: ``*``, the exact path, or a prefix ending in ``*``.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from kubelite.apiserver.authz.attributes import Attributes

Rule = dict[str, Any]
ALL = "*"


def _strings(rule: Rule, key: str) -> list[str]:
    v = rule.get(key)
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def verb_matches(rule: Rule, verb: str) -> bool:
    """The rule's verbs include ``verb`` (or ``*``)."""
    verbs = _strings(rule, "verbs")
    return ALL in verbs or verb in verbs


def group_matches(rule: Rule, group: str) -> bool:
    """The rule's apiGroups include ``group`` (or ``*``)."""
    groups = _strings(rule, "apiGroups")
    return ALL in groups or group in groups


def resource_matches(rule: Rule, resource: str, subresource: str) -> bool:
    """The rule's resources include the (sub)resource, directly or by a wildcard."""
    resources = _strings(rule, "resources")
    if ALL in resources:
        return True
    combined = f"{resource}/{subresource}" if subresource else resource
    if combined in resources:
        return True
    return bool(subresource) and f"{ALL}/{subresource}" in resources


def name_matches(rule: Rule, name: str) -> bool:
    """No resourceNames, or ``name`` among them."""
    names = _strings(rule, "resourceNames")
    return not names or name in names


def url_matches(rule: Rule, path: str) -> bool:
    """The rule's nonResourceURLs match ``path`` exactly, by ``*`` or by a ``prefix*``."""
    for url in _strings(rule, "nonResourceURLs"):
        if url in (ALL, path):
            return True
        if url.endswith(ALL) and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(rule: Rule, a: Attributes) -> bool:
    """Does this one rule allow the request?"""
    if not verb_matches(rule, a.verb):
        return False
    if a.resource_request:
        return (group_matches(rule, a.api_group) and resource_matches(rule, a.resource, a.subresource)
                and name_matches(rule, a.name))
    return url_matches(rule, a.path)


def rules_allow(rules: Iterable[Rule], a: Attributes) -> bool:
    """Does any of the rules allow the request?"""
    return any(rule_allows(r, a) for r in rules)


# --- coverage (escalation prevention) --------------------------------------------------------

def _atoms(rule: Rule) -> Iterator[Rule]:
    """The rule broken into one-verb, one-group, one-resource, one-name (or one-URL) rules."""
    verbs = _strings(rule, "verbs")
    for verb in verbs:
        for url in _strings(rule, "nonResourceURLs"):
            yield {"verbs": [verb], "nonResourceURLs": [url]}
        for group in _strings(rule, "apiGroups"):
            for resource in _strings(rule, "resources"):
                names = _strings(rule, "resourceNames")
                if not names:
                    yield {"verbs": [verb], "apiGroups": [group], "resources": [resource]}
                for name in names:
                    yield {"verbs": [verb], "apiGroups": [group], "resources": [resource], "resourceNames": [name]}


def _has_all(values: list[str], wanted: list[str]) -> bool:
    return ALL in values or all(w in values for w in wanted)


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if ALL in owner:
        return True
    for w in wanted:
        if w in owner:
            continue
        _, slash, sub = w.partition("/")
        if slash and f"{ALL}/{sub}" in owner:
            continue
        return False
    return True


def _urls_cover(owner: list[str], wanted: list[str]) -> bool:
    return all(any(o in (w, ALL) or (o.endswith(ALL) and w.startswith(o[:-1])) for o in owner) for w in wanted)


def _rule_covers(owner: Rule, atom: Rule) -> bool:
    if not _has_all(_strings(owner, "verbs"), _strings(atom, "verbs")):
        return False
    if atom.get("nonResourceURLs"):
        return _urls_cover(_strings(owner, "nonResourceURLs"), _strings(atom, "nonResourceURLs"))
    if not _has_all(_strings(owner, "apiGroups"), _strings(atom, "apiGroups")):
        return False
    if not _resources_cover(_strings(owner, "resources"), _strings(atom, "resources")):
        return False
    owner_names = _strings(owner, "resourceNames")
    if not owner_names:
        return True
    # A rule limited to names covers only requests limited to those names.
    wanted = _strings(atom, "resourceNames")
    return bool(wanted) and all(n in owner_names for n in wanted)


def uncovered(owner_rules: list[Rule], wanted: Iterable[Rule]) -> list[Rule]:
    """The atomic pieces of ``wanted`` that no owner rule covers ([] when fully covered)."""
    missing: list[Rule] = []
    for rule in wanted:
        for atom in _atoms(rule):
            if not any(_rule_covers(o, atom) for o in owner_rules) and atom not in missing:
                missing.append(atom)
    return missing


# --- printing ------------------------------------------------------------------------------

def compact(rule: Rule) -> str:
    """A rule as upstream's CompactString prints it: {APIGroups:[""], Resources:["pods"], Verbs:["get"]}."""
    def q(values: list[str]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("resourceNames", "ResourceNames"),
                       ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        values = _strings(rule, key)
        if values:
            parts.append(f"{label}:{q(values)}")
    return "{" + ", ".join(parts) + "}"
