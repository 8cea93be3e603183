"""pytest plugin: the ``kubelite_cluster`` and ``kube`` fixtures.

``kubelite_cluster`` (session scope) is one kubelite API server for the whole run;
``kube`` (function scope) is the same cluster, reset to its saved state before each
test, so every test starts from a fresh cluster at the cost of a reset (milliseconds)
rather than a start.  Settings (ini file or command line):

- ``kubelite_api_only`` (default true): false runs the whole cluster (controllers,
  scheduler, a node with ``process`` pods, proxy);
- ``kubelite_controllers`` (default false): with the API server alone, run the
  controllers too (garbage collector, namespace deletion …);
- ``kubelite_args``: more ``kubelite server`` flags;
- ``kubelite_launcher``: ``process`` (default: a launcher per test run) or ``persistent``
  (the user's launcher that outlives the run, so even the first cluster starts warm).

Importing this module imports nothing of the server, so having the plugin installed
costs a suite that does not use the fixtures nothing.
"""
from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest

from kubelite.testing.fixture import Cluster, cluster, use_launcher, warm_up

FIXTURES = ("kubelite_cluster", "kube")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's ini settings and command-line options."""
    group = parser.getgroup("kubelite", "kubelite test cluster")
    group.addoption("--kubelite-whole", action="store_true", default=None,
                    help="run the whole kubelite cluster, not the API server alone")
    parser.addini("kubelite_api_only", "run the kubelite API server alone (default true)", type="bool", default=True)
    parser.addini("kubelite_controllers", "with the API server alone, run the controllers too", type="bool",
                  default=False)
    parser.addini("kubelite_args", "more `kubelite server` flags", default="")
    parser.addini("kubelite_launcher", "fork clusters from a launcher of this run (process) or from the "
                  "user's persistent one (persistent)", default="")


def pytest_configure(config: pytest.Config) -> None:
    """Choose the launcher named in the ini file ($KUBELITE_LAUNCHER when it names none)."""
    kind = str(config.getini("kubelite_launcher") or "")
    if kind:
        use_launcher(kind)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Start the warm launcher as soon as a test that uses a cluster is collected (its
    imports then overlap the rest of the collection)."""
    if any(name in getattr(item, "fixturenames", ()) for name in FIXTURES):
        warm_up()


@pytest.fixture(scope="session")
def kubelite_cluster(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One kubelite cluster for the test session."""
    api_only = not pytestconfig.getoption("kubelite_whole") and bool(pytestconfig.getini("kubelite_api_only"))
    args = shlex.split(str(pytestconfig.getini("kubelite_args")))
    with cluster(api_only, controllers=bool(pytestconfig.getini("kubelite_controllers")), args=args,
                 directory=str(tmp_path_factory.getbasetemp())) as c:
        yield c


@pytest.fixture
def kube(kubelite_cluster: Cluster) -> Cluster:
    """The session's cluster, reset to its saved state before this test."""
    kubelite_cluster.reset()
    return kubelite_cluster
