"""Built-in admission plugins of the API server: ResourceQuota, LimitRanger and Priority.

Each is registered on the registry's hook lists in ``apiserver/app.py``; they read what
they need (quotas, limit ranges, priority classes) from the API server's in-memory copies
(``apiserver/lookups.py``) and through the registry, the one place that touches the store.
"""
from __future__ import annotations

from kubelite.apiserver.lookups import Lookups
from kubelite.apiserver.registry import Registry


def install(registry: Registry, lookups: Lookups) -> None:
    """Append the built-in plugins to the registry's hooks in upstream's order: LimitRanger
    then Priority among the mutating ones; Priority then ResourceQuota (which charges usage,
    so it goes last) among the validating ones."""
    from kubelite.apiserver.admission.limitranger import LimitRanger
    from kubelite.apiserver.admission.priority import PriorityAdmission
    from kubelite.apiserver.admission.quota import QuotaAdmission
    priority = PriorityAdmission(registry, lookups)
    registry.admission.extend([LimitRanger(lookups), priority.admit])
    registry.validating.extend([priority.validate, QuotaAdmission(registry, lookups)])
