"""Built-in admission plugins of the API server: ResourceQuota, LimitRanger and Priority.

Each is registered on the registry's hook lists in ``apiserver/app.py``; they read what
they need (quotas, limit ranges, priority classes) through the registry, which is the one
place that touches the store.
"""
from __future__ import annotations

from kubelite.apiserver.registry import Registry


def install(registry: Registry) -> None:
    """Append the built-in plugins to the registry's hooks in upstream's order: LimitRanger
    then Priority among the mutating ones; Priority then ResourceQuota (which charges usage,
    so it goes last) among the validating ones."""
    from kubelite.apiserver.admission.limitranger import LimitRanger
    from kubelite.apiserver.admission.priority import PriorityAdmission
    from kubelite.apiserver.admission.quota import QuotaAdmission
    priority = PriorityAdmission(registry)
    registry.admission.extend([LimitRanger(registry), priority.admit])
    registry.validating.extend([priority.validate, QuotaAdmission(registry)])
