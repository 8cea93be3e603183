"""Fixtures of the conformance suite.

One ``kubelite server`` serves the whole suite (controllers on, for the garbage
collector and namespaces; no scheduler, node agent or proxy, so nothing is run and
nothing is dialled). It is started while tests are collected, because the resources a
spec is parametrized over come from the server's own discovery. A spec says what it
needs with ``@pytest.mark.verbs(...)`` and ``@pytest.mark.subresource(...)``; resources
that do not advertise it are not parametrized (``test_discovery`` checks that such verbs
are refused); ``@pytest.mark.garbage_collected(flag)`` selects by the sample's kind.
Each test gets its own namespace and a label that selects only its objects.

Known defects are strict xfails from ``known.py``, applied here per (spec, resource).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import API_ONLY, Server, namespace_name, start_server

from .apiclient import Api, Resource, discover
from .known import known_failure
from .samples import SAMPLES, WIDGET_CRD, Sample

Obj = dict[str, Any]
LABEL = "conformance.kubelite.io/test"
SERVER_ARGS = ("--disable", "scheduler,agent,proxy")


@dataclass
class Shared:
    """The suite's server, a client of it and what it serves."""

    srv: Server
    api: Api
    resources: list[Resource]
    tmp: Path
    stopped: bool = False

    def stop(self) -> None:
        """Stop the server and remove its directory (idempotent)."""
        self.stopped = True
        self.api.close()
        self.srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


_SHARED = pytest.StashKey[Shared]()


def shared(config: pytest.Config) -> Shared:
    """The suite's running server: started at collection, and again when a stopped one is
    asked for (under xdist a worker may leave the package and come back to it later)."""
    got = config.stash.get(_SHARED, None)
    if got is not None and not got.stopped:
        return got
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-conformance-"))
    srv = start_server(tmp, *SERVER_ARGS)
    api = Api(srv.kubeconfig)
    # Custom resources are served kinds too: their definition exists before discovery is read.
    api.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)
    got = Shared(srv, api, discover(api), tmp)
    config.add_cleanup(got.stop)  # also when no conformance test ran (collect-only, -k …)
    config.stash[_SHARED] = got
    return got


def _wanted(metafunc: pytest.Metafunc, r: Resource) -> bool:
    verbs = metafunc.definition.get_closest_marker("verbs")
    if verbs and not r.has(*verbs.args):
        return False
    gc = metafunc.definition.get_closest_marker("garbage_collected")
    if gc:
        sample = SAMPLES.get(r.id)
        if sample is not None and sample.garbage_collected != gc.args[0]:
            return False
    sub = metafunc.definition.get_closest_marker("subresource")
    if sub:
        name, *sub_verbs = sub.args
        if name not in r.subresources or not set(sub_verbs) <= r.subresources[name]:
            return False
    return True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``res`` over the served resources a spec applies to."""
    if "res" not in metafunc.fixturenames:
        return
    params = []
    for r in shared(metafunc.config).resources:
        if not _wanted(metafunc, r):
            continue
        reason = known_failure(metafunc.function.__name__, r.id)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(r, id=r.id, marks=marks))
    metafunc.parametrize("res", params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Known defects of one variant of a spec (``spec[variant]`` in ``known.py``, e.g. one
    wire format) are strict xfails of that variant only."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        res = params.get("res")
        if not isinstance(res, Resource):
            continue
        for name, value in params.items():
            reason = known_failure(f"{getattr(item, 'originalname', item.name)}[{value}]", res.id,
                                   wildcard=False) if name != "res" else None
            if reason:
                item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def pytest_collection_finish(session: pytest.Session) -> None:
    """An xdist worker stops the collection's server: which files it will run is not known
    yet, and the ``conformance`` fixture starts one again for those it gets."""
    got = session.config.stash.get(_SHARED, None)
    if got is not None and hasattr(session.config, "workerinput"):
        got.stop()


def pytest_configure(config: pytest.Config) -> None:
    """Register the suite's markers."""
    config.addinivalue_line("markers", "verbs(*verbs): the resource must advertise these verbs")
    config.addinivalue_line("markers", "subresource(name, *verbs): the resource must have this subresource")
    config.addinivalue_line("markers", "garbage_collected(flag): the sample's kind is (not) handled by the collector")


@pytest.fixture(scope="package")
def conformance(request: pytest.FixtureRequest):
    """The suite's server, client and discovery; stopped when the package's tests are done,
    so it does not idle through the rest of a full test run."""
    got = shared(request.config)
    yield got
    got.stop()


@pytest.fixture(scope="package")
def api(conformance: Shared) -> Api:
    """A client of the session's server."""
    return conformance.api


@pytest.fixture(scope="package")
def resources(conformance: Shared) -> dict[str, Resource]:
    """Every served resource by id."""
    return {r.id: r for r in conformance.resources}


@pytest.fixture
def sample(res: Resource) -> Sample:
    """The resource's sample; a resource without one fails every spec."""
    s = SAMPLES.get(res.id)
    if s is None:
        pytest.fail(f"{res.id} is served but has no sample object: add one to tests/conformance/samples.py")
    return s


@dataclass
class Kit:
    """Everything one spec needs about one resource: names, labels, create and read."""

    api: Api
    res: Resource
    sample: Sample
    ns: str
    token: str
    made: list[tuple[Resource, str]] = field(default_factory=list)

    @property
    def selector(self) -> str:
        """A label selector matching exactly this test's objects."""
        return f"{LABEL}={self.token}"

    def name(self, base: str = "obj") -> str:
        """A DNS-label name unique to this test (cluster-scoped kinds share one space)."""
        return f"{base}-{self.token}{self.sample.name_suffix}"

    def obj(self, name: str, labels: dict[str, str] | None = None, metadata: Obj | None = None) -> Obj:
        """The sample object named ``name`` with this test's label (and ``labels``, and
        any other ``metadata`` such as ownerReferences or finalizers)."""
        o = self.sample.make(name, self.ns)
        md = o.setdefault("metadata", {})
        md["labels"] = {**(md.get("labels") or {}), LABEL: self.token, **(labels or {})}
        md.update(metadata or {})
        return o

    def prereqs(self, name: str) -> None:
        """Create what the sample needs first."""
        create_prereqs(self.api, self.sample, self.ns, name)

    def create(self, name: str, labels: dict[str, str] | None = None, metadata: Obj | None = None, **kw: Any) -> Obj:
        """Create the sample (and its prerequisites) as ``name``."""
        self.prereqs(name)
        out = self.api.create(self.res, self.ns, self.obj(name, labels, metadata), **kw)
        if not self.res.namespaced:
            self.made.append((self.res, name))
        return out

    def path(self, name: str = "", sub: str = "") -> str:
        """URL path of the collection or one object in this test's namespace."""
        return self.res.path(self.ns, name, sub)

    def list_names(self, **params: Any) -> list[str]:
        """Names of this test's objects of the resource."""
        out = self.api.list(self.res, self.ns, labelSelector=self.selector, **params)
        return [i["metadata"]["name"] for i in out["items"]]


def create_prereqs(api: Api, sample: Sample, ns: str, name: str) -> None:
    """Create the objects a sample needs in its namespace (core/v1 or grouped kinds)."""
    for p in sample.prereqs(name, ns):
        av, kind = p["apiVersion"], p["kind"]
        plural = kind.lower() + ("es" if kind.endswith("s") else "s")
        root = f"/apis/{av}" if "/" in av else f"/api/{av}"
        api.call("POST", f"{root}/namespaces/{ns}/{plural}", p)


def create_sample(api: Api, res: Resource, sample: Sample, ns: str, name: str, labels: dict[str, str]) -> Obj:
    """Create one sample object (and its prerequisites) with exactly ``labels``."""
    create_prereqs(api, sample, ns, name)
    obj = sample.make(name, ns)
    obj["metadata"]["labels"] = dict(labels)
    return api.create(res, ns, obj)


def unique_namespace(request: pytest.FixtureRequest, prefix: str) -> str:
    """A namespace name from the test's id with more randomness than conftest's: one spec
    here has dozens of parametrizations whose ids share the first 40 characters."""
    return namespace_name(request, prefix) + os.urandom(2).hex()


@pytest.fixture
def ns(request: pytest.FixtureRequest, api: Api) -> str:
    """A fresh namespace for one test."""
    name = unique_namespace(request, "c")
    api.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
def kit(api: Api, res: Resource, sample: Sample, ns: str):
    """The spec's toolkit; cluster-scoped objects it made are deleted afterwards."""
    k = Kit(api, res, sample, ns, os.urandom(4).hex())
    yield k
    for r, name in k.made:
        api.request("DELETE", r.path("", name))


@pytest.fixture(scope="package")
def expiring(tmp_path_factory: pytest.TempPathFactory):
    """A second, API-only server that compacts its history every 0.2 s down to the last
    revision, so continue tokens and old resourceVersions expire within a second."""
    srv = start_server(tmp_path_factory.mktemp("expiring"), *API_ONLY, "--compact-interval", "0.2",
                       "--compact-keep", "1")
    api = Api(srv.kubeconfig)
    api.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)  # as the main server
    yield srv, api
    api.close()
    srv.stop()


@pytest.fixture
def xkit(request: pytest.FixtureRequest, expiring, res: Resource, sample: Sample):
    """A Kit on the expiring server."""
    _srv, xapi = expiring
    name = unique_namespace(request, "x")
    xapi.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return Kit(xapi, res, sample, name, os.urandom(4).hex())
