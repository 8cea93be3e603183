"""Rollout invariants, checked at every observed moment of a rollout.

For a Deployment with a stable spec that started fully available:
- pods that are not terminated (not being deleted, not Succeeded/Failed) never exceed
  spec.replicas + maxSurge;
- available pods never drop below spec.replicas - maxUnavailable.
``RolloutInvariants.check(pods)`` is called with the current pods of the Deployment
(from a fake API observer or a real watch) and records every violation.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubelite.api import meta
from kubelite.controllers.deployment import util
from kubelite.controllers.podcontrol import is_pod_ready

Obj = dict[str, Any]


def not_terminated(pod: Obj) -> bool:
    """Neither being deleted nor in a terminal phase."""
    return not meta.is_deleting(pod) and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


class RolloutInvariants:
    """Bounds from one Deployment spec; ``violations`` collects what broke them."""

    def __init__(self, deployment: Obj):
        self.replicas = util.replicas(deployment)
        self.max_pods = self.replicas + util.max_surge(deployment)
        self.min_available = self.replicas - util.max_unavailable(deployment)
        self.violations: list[str] = []
        self.checks = 0

    def check(self, pods: Iterable[Obj]) -> None:
        """Record a violation if the current pods break either bound."""
        pods = list(pods)
        self.checks += 1
        running = [p for p in pods if not_terminated(p)]
        available = [p for p in running if is_pod_ready(p)]
        if len(running) > self.max_pods:
            self.violations.append(f"{len(running)} pods > {self.max_pods} allowed")
        if len(available) < self.min_available:
            self.violations.append(f"{len(available)} available < {self.min_available} required")
