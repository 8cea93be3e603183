"""Discovery is the suite's source of truth: check it is complete and honest first.

Every served resource needs a sample, the legacy and aggregated documents must describe
the same resources, and a verb a resource does not advertise must be refused (405), so
that what the other specs skip by verb is really not served.
"""
from __future__ import annotations

import pytest

from kubelite.client.errors import MethodNotAllowed

from .apiclient import JSON, MERGE_PATCH, Api, Resource, check
from .samples import SAMPLES

# The request each verb is: method, whether it names one object. The invalid label
# selector makes an advertised list, watch or deletecollection fail fast with 400 and
# touch nothing; the invalid name does the same for writes.
VERB_REQUESTS = {
    "get": ("GET", True),
    "list": ("GET", False),
    "watch": ("GET", False),
    "create": ("POST", False),
    "update": ("PUT", True),
    "patch": ("PATCH", True),
    "delete": ("DELETE", True),
    "deletecollection": ("DELETE", False),
}
BAD_NAME = "Not_A_Valid_Name"
NO_ROUTE = "the server could not find the requested resource"


def test_every_served_resource_has_a_sample(conformance):
    missing = sorted(r.id for r in conformance.resources if r.id not in SAMPLES)
    assert not missing, f"served resources without a sample in tests/conformance/samples.py: {missing}"


def test_the_suite_found_the_core_resources(resources):
    # A discovery that answered nothing would make every parametrized spec vanish.
    for rid in ("v1/pods", "v1/configmaps", "v1/namespaces", "apps/v1/deployments"):
        assert rid in resources, f"{rid} missing from discovery: {sorted(resources)}"


def _legacy(api: Api) -> dict[str, tuple[str, bool, frozenset[str]]]:
    out: dict[str, tuple[str, bool, frozenset[str]]] = {}
    gvs = ["v1"] + [v["groupVersion"] for g in api.call("GET", "/apis")["groups"] for v in g["versions"]]
    for gv in gvs:
        doc = api.call("GET", "/api/v1" if gv == "v1" else f"/apis/{gv}")
        for r in doc["resources"]:
            if "/" not in r["name"]:
                out[f"{gv}/{r['name']}"] = (r["kind"], r["namespaced"], frozenset(r["verbs"]))
    return out


def test_legacy_and_aggregated_discovery_describe_the_same_resources(api, conformance):
    aggregated = {r.id: (r.kind, r.namespaced, r.verbs) for r in conformance.resources}
    legacy = _legacy(api)
    assert sorted(legacy) == sorted(aggregated)
    for rid, want in aggregated.items():
        assert legacy[rid] == want, rid


def test_each_verb_is_served_exactly_when_advertised(api: Api, res: Resource, ns: str):
    for verb, (method, named) in VERB_REQUESTS.items():
        params = {"labelSelector": "!!!"} if not named and method != "POST" else {}
        if verb == "watch":
            params["watch"] = "1"
        body = None
        if method in ("POST", "PUT"):
            body = {"apiVersion": res.api_version, "kind": res.kind, "metadata": {"name": BAD_NAME}}
        elif method == "PATCH":
            body = {}
        reply = api.request(method, res.path(ns, BAD_NAME if named else ""), body, params=params,
                            ctype=MERGE_PATCH if method == "PATCH" else JSON)
        if verb in res.verbs:
            assert reply.code != 405, f"{verb} is advertised but refused: {reply.raw[:200]!r}"
            assert not (reply.code == 404 and NO_ROUTE in reply.raw.decode()), f"{verb} is advertised but has no route"
        else:
            with pytest.raises(MethodNotAllowed):
                check(reply)


@pytest.mark.parametrize("rid", ["v1/replicationcontrollers", "v1/podtemplates"])
def test_the_kinds_upstreams_api_machinery_specs_use_are_served(resources, rid):
    assert rid in resources


def test_an_event_is_one_object_behind_both_apis(api: Api, resources, ns: str):
    core, grouped = resources["v1/events"], resources["events.k8s.io/v1/events"]
    created = api.create(core, ns, SAMPLES["v1/events"].make("both-ways", ns))
    seen = api.get_or_none(grouped, ns, "both-ways")
    assert seen is not None and seen["metadata"]["uid"] == created["metadata"]["uid"]
    assert seen["regarding"]["name"] == created["involvedObject"]["name"]
