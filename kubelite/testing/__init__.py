"""kubelite as a test fixture: a real API server for any Python test suite.

``with kubelite.testing.cluster() as c:`` starts ``kubelite server --api-only`` in a
temporary directory on a free port and gives ``c.kubeconfig``, ``c.url``,
``c.kubernetes_client()`` and ``c.reset()``; ``async with`` works too.  The pytest
plugin (``kubelite.testing.plugin``, loaded by the ``pytest11`` entry point) provides
the ``kubelite_cluster`` (session) and ``kube`` (reset before each test) fixtures.
See README.md, "kubelite as a test fixture".
"""
from __future__ import annotations

from kubelite.testing.fixture import Cluster, ClusterError, cluster, free_port, use_launcher, warm_up

__all__ = ["Cluster", "ClusterError", "cluster", "free_port", "use_launcher", "warm_up"]
