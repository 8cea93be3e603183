"""PodDisruptionBudget status helpers shared by the eviction subresource and the
disruption controller: the DisruptionAllowed condition and metav1's condition setter."""
from __future__ import annotations

import datetime as _dt
from typing import Any

from kubelite.api import meta

Obj = dict[str, Any]

CONDITION = "DisruptionAllowed"
SUFFICIENT, INSUFFICIENT, SYNC_FAILED = "SufficientPods", "InsufficientPods", "SyncFailed"


def set_condition(conditions: list[Obj], cond: Obj, now: _dt.datetime) -> list[Obj]:
    """meta.SetStatusCondition: replace the condition of cond's type; its transition time moves
    only when the status changes."""
    out = [dict(c) for c in conditions]
    for c in out:
        if c.get("type") == cond["type"]:
            if c.get("status") != cond["status"]:
                c["status"] = cond["status"]
                c["lastTransitionTime"] = meta.rfc3339(now)
            c["reason"] = cond.get("reason", "")
            c["message"] = cond.get("message", "")
            c["observedGeneration"] = cond.get("observedGeneration", 0)
            if not c["observedGeneration"]:
                c.pop("observedGeneration")
            return out
    new = {"type": cond["type"], "status": cond["status"], "lastTransitionTime": meta.rfc3339(now),
           "reason": cond.get("reason", ""), "message": cond.get("message", "")}
    if cond.get("observedGeneration"):
        new["observedGeneration"] = cond["observedGeneration"]
    out.append(new)
    return out


def allowed_condition(allowed: int, generation: int) -> Obj:
    """The DisruptionAllowed condition for a computed status."""
    if allowed > 0:
        return {"type": CONDITION, "status": "True", "reason": SUFFICIENT, "message": "",
                "observedGeneration": generation}
    return {"type": CONDITION, "status": "False", "reason": INSUFFICIENT, "message": "",
            "observedGeneration": generation}
