"""The Kubernetes version kubelite answers as, and the User-Agent each of its components sends.

The API server names a writer in ``managedFields`` after the program part of its User-Agent,
so each component introduces itself as its upstream counterpart does (kube-controller-manager,
kube-scheduler, kubelet, kube-proxy): `kubectl get -o yaml --show-managed-fields` and
server-side apply's conflict messages then name the same managers as on a real cluster.
"""
from __future__ import annotations

KUBE_VERSION = (1, 33, 0)
GIT_VERSION = f"v{KUBE_VERSION[0]}.{KUBE_VERSION[1]}.{KUBE_VERSION[2]}+kubelite"

CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KUBELET = "kubelet"
KUBE_PROXY = "kube-proxy"
APISERVER = "kube-apiserver"


def user_agent(program: str) -> str:
    """``program/version (os/arch) kubelite``, shaped like client-go's default User-Agent."""
    return f"{program}/{GIT_VERSION} (linux/amd64) kubelite"
