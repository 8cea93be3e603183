"""Priority admission and the built-in PriorityClasses.

As upstream's Priority plugin: a new pod gets ``spec.priority`` and ``spec.preemptionPolicy``
from the PriorityClass it names, or from the global-default class (the lowest-valued one if
several claim it) when it names none (then its ``priorityClassName`` becomes that class),
or priority 0 when there is no default; a pod naming an unknown class, or bringing its own
different priority, is refused.  Only one PriorityClass may be the global default, and the
two system classes exist from the start and cannot be deleted.
"""
from __future__ import annotations

from typing import Any

from kubelite.api import errors, meta
from kubelite.api.resources import PRIORITYCLASSES, ResourceInfo
from kubelite.api.validation_quota import SYSTEM_PRIORITY_CLASSES
from kubelite.apiserver.admission.status import forbidden
from kubelite.apiserver.lookups import Lookups
from kubelite.apiserver.registry import AdmissionAttributes, Registry

Obj = dict[str, Any]
_SYSTEM_DESCRIPTIONS = {
    "system-node-critical": "Used for system critical pods that must not be moved from their current node.",
    "system-cluster-critical": "Used for system critical pods that must run in the cluster, but can be moved "
                               "to another node if necessary.",
}


def system_priority_classes() -> list[Obj]:
    """The built-in classes as objects to create."""
    return [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
             "value": value, "description": _SYSTEM_DESCRIPTIONS[name], "preemptionPolicy": "PreemptLowerPriority"}
            for name, value in SYSTEM_PRIORITY_CLASSES.items()]


async def ensure_system_priority_classes(registry: Registry) -> None:
    """Create the built-in classes that are missing (at every start, as upstream's post-start hook)."""
    for pc in system_priority_classes():
        try:
            await registry.create(PRIORITYCLASSES, "", pc)
        except errors.AlreadyExists:
            pass


class PriorityAdmission:
    """Mutating hook for pods, validating hook for PriorityClasses."""

    def __init__(self, registry: Registry, lookups: Lookups):
        self.registry = registry
        self.lookups = lookups

    async def admit(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        """Resolve a new pod's priority from its class (registry.admission)."""
        if info.group or info.kind != "Pod" or old is not None:
            return
        spec = obj.setdefault("spec", {})
        name = spec.get("priorityClassName") or ""
        policy: str | None
        if not name:
            default = _lowest_default(await self.lookups.priority_classes_now())
            if default is None:
                priority, policy = 0, "PreemptLowerPriority"
            else:
                name, priority = meta.name(default), int(default.get("value") or 0)
                policy = default.get("preemptionPolicy")
                spec["priorityClassName"] = name
        else:
            pc = await self.lookups.priority_class(name)
            if pc is None:
                raise forbidden(info, meta.name(obj), f"no PriorityClass with name {name} was found")
            priority = int(pc.get("value") or 0)
            policy = pc.get("preemptionPolicy")
        policy = policy or "PreemptLowerPriority"
        given = spec.get("priority")
        if given is not None and given != priority:
            raise forbidden(info, meta.name(obj), f"the integer value of priority ({given}) must not be provided in "
                                                  f"pod spec; priority admission controller computed {priority} "
                                                  "from the given PriorityClass name")
        spec["priority"] = priority
        given_policy = spec.get("preemptionPolicy")
        if given_policy and given_policy != policy:
            raise forbidden(info, meta.name(obj), f"the string value of PreemptionPolicy ({given_policy}) must "
                                                  f"not be provided in pod spec; priority admission controller "
                                                  f"computed {policy} from the given PriorityClass name")
        spec["preemptionPolicy"] = policy

    async def validate(self, attrs: AdmissionAttributes) -> None:
        """One global default at most; the system classes stay (registry.validating)."""
        if attrs.info is not PRIORITYCLASSES:
            return
        if attrs.operation == "DELETE":
            if attrs.name in SYSTEM_PRIORITY_CLASSES:
                raise forbidden(attrs.info, attrs.name, "this is a system priority class and cannot be deleted")
            return
        obj = attrs.obj or {}
        if attrs.subresource or not obj.get("globalDefault"):
            return
        if attrs.old is not None and attrs.old.get("globalDefault"):
            return
        # From the store, not the copy: a default set through another API server counts at once.
        classes, _, _, _ = await self.registry.list(PRIORITYCLASSES, "")
        existing = _lowest_default(classes)
        if existing is not None and meta.name(existing) != attrs.name:
            raise forbidden(attrs.info, attrs.name, f"PriorityClass {meta.name(existing)} is already marked as "
                                                    "default. Only one default can exist")


def _lowest_default(classes: list[Obj]) -> Obj | None:
    """The global-default class with the lowest value, if any."""
    defaults = [pc for pc in classes if pc.get("globalDefault")]
    return min(defaults, key=lambda pc: int(pc.get("value") or 0)) if defaults else None
