"""Node selector terms (node affinity of pods and of PersistentVolumes) matched against a Node."""
from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def requirement_matches(expr: Obj, values: dict[str, str]) -> bool:
    """One NodeSelectorRequirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) against ``values``."""
    k, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return k in values and values[k] in vals
    if op == "NotIn":
        return k not in values or values[k] not in vals
    if op == "Exists":
        return k in values
    if op == "DoesNotExist":
        return k not in values
    # Gt and Lt compare with exactly one integer value (validation requires one; anything
    # else matches nothing, as upstream's matcher treats it as an error).
    if op in ("Gt", "Lt") and k in values and len(vals) == 1:
        try:
            a, b = int(values[k]), int(vals[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def _field_matches(expr: Obj, node: Obj) -> bool:
    # metadata.name is the only field a node selector may name.
    if expr.get("key") != "metadata.name":
        return False
    return requirement_matches(expr, {"metadata.name": (node.get("metadata") or {}).get("name") or ""})


def term_matches(term: Obj, node: Obj) -> bool:
    """A NodeSelectorTerm: all its expressions and fields hold; an empty term matches nothing."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    return all(requirement_matches(e, labels) for e in exprs) and all(_field_matches(f, node) for f in fields)


def terms_match(terms: list[Obj], node: Obj) -> bool:
    """NodeSelectorTerms are ORed: whether any of them matches the node."""
    return any(term_matches(t, node) for t in terms)
