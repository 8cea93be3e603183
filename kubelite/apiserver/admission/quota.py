"""ResourceQuota admission: refuse a create that would take a namespace over a quota,
and charge the quota's status.used at once.

As upstream's quota admission: only quotas the controller has already observed
(status.hard set) are enforced; for each quota whose evaluator covers the new object
(and whose scopes cover it, for pods) the object's usage is added to status.used and
compared with status.hard.  The charge is a compare-and-swap on the quota object
(``guaranteed_update`` re-reads and re-checks on a race), so parallel creates cannot
all pass on the same stale usage.  A create that fails later leaves the quota
over-charged until the controller's next sync recomputes it (upstream too).
"""
from __future__ import annotations

import logging
from typing import Any

from kubelite.api import errors, meta
from kubelite.api import quota as q
from kubelite.api.resources import RESOURCEQUOTAS, ResourceInfo
from kubelite.apiserver.admission.status import forbidden
from kubelite.apiserver.lookups import Lookups
from kubelite.apiserver.registry import AdmissionAttributes, Registry

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class QuotaAdmission:
    """The validating hook (registry.validating) that enforces ResourceQuotas."""

    def __init__(self, registry: Registry, lookups: Lookups):
        self.registry = registry
        self.lookups = lookups

    async def __call__(self, attrs: AdmissionAttributes) -> None:
        """Check and charge every quota of the namespace that covers a new object."""
        if attrs.operation != "CREATE" or attrs.subresource or not attrs.namespace or attrs.obj is None:
            return
        info = attrs.info
        # The copy says only whether there are quotas; their status is read from the store, so
        # the check below and the compare-and-swap charge see the same, current usage.
        if not await self.lookups.has_quotas(attrs.namespace):
            return
        quotas, _, _, _ = await self.registry.list(RESOURCEQUOTAS, attrs.namespace)
        if not quotas:
            return
        obj = attrs.obj
        group, plural = info.group, info.plural
        usage = q.usage(group, plural, obj)
        if not usage:
            return
        charges: list[tuple[str, q.ResourceList]] = []
        for quota in sorted(quotas, key=meta.name):
            hard = q.to_list((quota.get("status") or {}).get("hard"))
            restricted = q.matching_resources(group, plural, hard)
            if not restricted or not q.quota_matches(quota, group, plural, obj):
                continue
            name = meta.name(quota)
            if not group and plural == "pods":
                missing = q.missing_constraints(obj, restricted)
                if missing:
                    raise forbidden(info, attrs.name, f"failed quota: {name}: {missing}")
            used = q.to_list((quota.get("status") or {}).get("used"))
            unknown = [r for r in restricted if r not in used]
            if unknown:
                raise forbidden(info, attrs.name, f"status unknown for quota: {name}, resources: {','.join(unknown)}")
            requested = q.mask(usage, restricted)
            if requested:
                _check(info, attrs.name, name, hard, used, requested)
                charges.append((name, requested))
        if attrs.dry_run:
            return
        done: list[tuple[str, q.ResourceList]] = []
        try:
            for name, requested in charges:
                await self._charge(attrs, name, requested)
                done.append((name, requested))
        except errors.StatusError:
            for name, requested in done:
                await self._refund(attrs.namespace, name, requested)
            raise

    async def _charge(self, attrs: AdmissionAttributes, name: str, requested: q.ResourceList) -> None:
        """Add ``requested`` to the quota's status.used if it still fits (compare-and-swap)."""
        def mutate(quota: Obj) -> Obj:
            status = quota.setdefault("status", {})
            hard = q.to_list(status.get("hard"))
            used = q.to_list(status.get("used"))
            _check(attrs.info, attrs.name, name, hard, used, requested)
            status["used"] = {**(status.get("used") or {}), **q.to_json(q.add(q.mask(used, requested), requested))}
            return quota
        try:
            await self.registry.guaranteed_update(RESOURCEQUOTAS, attrs.namespace, name, mutate, subresource="status")
        except errors.NotFound:
            return  # deleted meanwhile: nothing to charge

    async def _refund(self, ns: str, name: str, requested: q.ResourceList) -> None:
        """Take back a charge made for a create another quota then refused."""
        def mutate(quota: Obj) -> Obj:
            status = quota.setdefault("status", {})
            used = q.to_list(status.get("used"))
            status["used"] = {**(status.get("used") or {}),
                              **q.to_json(q.subtract(q.mask(used, requested), requested))}
            return quota
        try:
            await self.registry.guaranteed_update(RESOURCEQUOTAS, ns, name, mutate, subresource="status")
        except errors.StatusError as e:
            log.warning("could not refund quota %s/%s: %s", ns, name, e)


def _check(info: ResourceInfo, obj_name: str, quota_name: str, hard: q.ResourceList, used: q.ResourceList,
           requested: q.ResourceList) -> None:
    """Raise upstream's ``exceeded quota`` 403 when used + requested goes over hard."""
    new_usage = q.add(q.mask(used, requested), requested)
    over = q.exceeded(new_usage, hard)
    if over:
        raise forbidden(info, obj_name, f"exceeded quota: {quota_name}, requested: {q.pretty(q.mask(requested, over))}, "
                                        f"used: {q.pretty(q.mask(used, over))}, limited: {q.pretty(q.mask(hard, over))}")
