"""ClusterRole aggregation: a ClusterRole with an ``aggregationRule`` gets the rules of
every ClusterRole its selectors match.

Upstream twin: ``pkg/controller/clusterroleaggregation``.  Any ClusterRole change may
alter any aggregate, so every event queues every ClusterRole that has an
``aggregationRule``.  A sync walks the selectors in order, takes the matching roles
sorted by name (never the aggregate itself) and appends each rule not already present;
the result replaces ``rules`` when it differs.  This is how ``admin``, ``edit`` and
``view`` get their rules from ``system:aggregate-to-*``, and how a custom ClusterRole
labelled ``rbac.authorization.k8s.io/aggregate-to-view: "true"`` extends ``view``.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.errors import StatusError
from kubelite.api.resources import CLUSTERROLES
from kubelite.api.selectors import selector_from_dict
from kubelite.client.errors import Conflict, NotFound
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def aggregate_rules(role: Obj, all_roles: list[Obj]) -> list[Obj]:
    """The rules an aggregated ClusterRole should hold (pure)."""
    out: list[Obj] = []
    for sel in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        try:
            selector = selector_from_dict(sel if isinstance(sel, dict) else {})
        except StatusError:
            continue  # validation refuses such selectors; one stored earlier matches nothing
        for other in sorted(all_roles, key=meta.name):
            if meta.name(other) == meta.name(role) or not selector.matches(meta.labels(other)):
                continue
            for rule in other.get("rules") or []:
                if rule not in out:
                    out.append(rule)
    return out


class ClusterRoleAggregationController:
    """Keeps aggregated ClusterRoles' rules equal to the union of the roles they select."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 1):
        self.roles = factory.informer(CLUSTERROLES)
        self.workers = workers
        self.queue = WorkQueue("clusterrole-aggregation")
        self._rc = client.resource(CLUSTERROLES)
        self.roles.add_handler(self._changed, lambda _o, _n: self._changed(_n), self._changed)

    def _changed(self, _role: Obj) -> None:
        for role in self.roles.list():
            if role.get("aggregationRule") is not None:
                self.queue.add(meta.name(role))

    async def sync(self, name: str) -> None:
        """Bring one aggregated ClusterRole's rules up to date."""
        role = self.roles.get(name)
        if role is None or role.get("aggregationRule") is None:
            return
        rules = aggregate_rules(role, self.roles.list())
        if rules == (role.get("rules") or []):
            return
        new = dict(role, rules=rules)
        try:
            await self._rc.update(new)
        except NotFound:
            return
        except Conflict:
            self.queue.add_after(name, 0.1)  # the cache was behind; look again

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self.roles.start()
        await self.roles.wait_synced()
        self._changed({})
        await process_until(self.queue, self.sync, stop, self.workers)
