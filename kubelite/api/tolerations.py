"""Whether a pod's toleration covers a node's taint (one rule for scheduler, node lifecycle and DaemonSets)."""
from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def tolerates(tol: Obj, taint: Obj) -> bool:
    """A toleration matches a taint: same effect (or any), same key (or any), and by operator
    Exists any value or Equal (the default) the same value; an unknown operator matches nothing."""
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    if tol.get("key") and tol["key"] != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (tol.get("value") or "") == (taint.get("value") or "")
    return False
