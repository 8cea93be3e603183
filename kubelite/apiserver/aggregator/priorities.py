"""Where each group and version sorts in discovery: upstream's APIService priorities."""
from __future__ import annotations

# (group, version) -> (groupPriorityMinimum, versionPriority), as upstream's aggregator lists them.
PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apiregistration.k8s.io", "v1"): (18000, 15),
    ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v1"): (17500, 15),
    ("autoscaling", "v2"): (17500, 30),
    ("batch", "v1"): (17400, 15),
    ("certificates.k8s.io", "v1"): (17300, 15),
    ("networking.k8s.io", "v1"): (17200, 15),
    ("policy", "v1"): (17100, 15),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("storage.k8s.io", "v1"): (16800, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("node.k8s.io", "v1"): (16300, 15),
    ("discovery.k8s.io", "v1"): (16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21),
    # What metrics-server's APIService asks for (kubelite answers metrics.k8s.io itself).
    ("metrics.k8s.io", "v1beta1"): (100, 100),
}
# CRD groups: what upstream's CRD registration controller gives them.
CRD_PRIORITY = (1000, 100)


def group_priority(group: str) -> int:
    """The groupPriorityMinimum of a group served here (CRD groups: 1000)."""
    return max((p[0] for (g, _), p in PRIORITIES.items() if g == group), default=CRD_PRIORITY[0])
